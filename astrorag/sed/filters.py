"""Filter registry: every band name maps to a pivot wavelength computed from a real transmission curve.

Curves ship in ``astrorag/data/filters`` (JWST NIRCam and MIRI in CIGALE format; HST, VLT and Spitzer
curves; see PROVENANCE.txt there). A few HST bands used by JWST-era catalogs have no curve here;
their pivot wavelengths are the STScI instrument-handbook values and are marked as such.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Filter:
    name: str            # canonical, e.g. "jwst.nircam.F444W"
    pivot_um: float      # pivot wavelength in micron
    instrument: str      # "nircam", "miri", "acs", "wfc3", ...
    source: str          # "curve:<file>" or "handbook"

    @property
    def short(self) -> str:
        """Lower-case band as catalogs write it: ``f444w``."""
        return self.name.split(".")[-1].lower()


# Which instrument the bagpipes/HST-era curve files belong to.
_BAGPIPES = {"f435w": "hst.acs", "f606w": "hst.acs", "f775w": "hst.acs", "f850lp": "hst.acs",
             "f098m": "hst.wfc3", "f105w": "hst.wfc3", "f125w": "hst.wfc3", "f160w": "hst.wfc3",
             "irac1": "spitzer.irac", "irac2": "spitzer.irac", "irac3": "spitzer.irac", "irac4": "spitzer.irac",
             "hawki_k": "vlt.hawki", "isaac_ks": "vlt.isaac", "vimos_u": "vlt.vimos"}
# HST pivot wavelengths (micron) from the STScI ACS and WFC3 instrument handbooks, for bands with no curve here.
_HANDBOOK = {"hst.acs.F475W": 0.4747, "hst.acs.F814W": 0.8046, "hst.wfc3.F110W": 1.1534,
             "hst.wfc3.F140W": 1.3923, "hst.wfc3.F350LP": 0.5874}
# Catalog spellings that name the same band (Kokorev et al. 2024 suffix "u" = WFC3/UVIS, "n" = a second
# NIRCam/NIRISS reduction; NIRCam's F162M is mounted with F150W2, hence "f150w2-f162m").
_ALIASES = {"f150w2-f162m": "jwst.nircam.F162M", "ch1": "spitzer.irac.IRAC1", "ch2": "spitzer.irac.IRAC2",
            "ch3": "spitzer.irac.IRAC3", "ch4": "spitzer.irac.IRAC4", "irac_ch1": "spitzer.irac.IRAC1",
            "irac_ch2": "spitzer.irac.IRAC2", "irac_ch3": "spitzer.irac.IRAC3", "irac_ch4": "spitzer.irac.IRAC4",
            "ks": "vlt.hawki.HAWKI_K", "k": "vlt.hawki.HAWKI_K", "u": "vlt.vimos.VIMOS_U"}


def _read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(path, comments="#")
    return data[:, 0], data[:, 1]


def pivot_wavelength(wave: np.ndarray, trans: np.ndarray) -> float:
    """Pivot wavelength of a photon-counting filter: sqrt(int T l dl / int T / l dl), in the curve's units.

    >>> w = np.linspace(4.0, 5.0, 101); round(pivot_wavelength(w, np.ones_like(w)), 4)
    4.4907
    """
    return float(np.sqrt(np.trapezoid(trans * wave, wave) / np.trapezoid(trans / wave, wave)))


def _curves_root() -> Path:
    return Path(str(resources.files("astrorag") / "data" / "filters"))


def curve_file(f: Filter) -> Path | None:
    """The shipped transmission-curve file of a filter (Angstrom, throughput); None for handbook-only bands."""
    return _curves_root() / f.source.split(":", 1)[1] if f.source.startswith("curve:") else None


@lru_cache(maxsize=1)
def registry() -> dict[str, Filter]:
    """All known filters by canonical name (built once from the shipped curves)."""
    root = _curves_root()
    out: dict[str, Filter] = {}
    for inst in ("nircam", "miri"):
        for path in sorted((root / inst).glob("*.dat")):
            wave, trans = _read_curve(path)
            name = f"jwst.{inst}.{path.stem}"
            out[name] = Filter(name, pivot_wavelength(wave, trans) / 1e4, inst, f"curve:{inst}/{path.name}")
    for path in sorted((root / "bagpipes").glob("*.dat")):
        key = path.stem.lower()
        prefix = _BAGPIPES[key]
        band = path.stem.upper() if prefix.startswith("hst") else path.stem
        wave, trans = _read_curve(path)
        out[f"{prefix}.{band}"] = Filter(f"{prefix}.{band}", pivot_wavelength(wave, trans) / 1e4,
                                         prefix.split(".")[1], f"curve:bagpipes/{path.name}")
    for name, pivot in _HANDBOOK.items():
        out[name] = Filter(name, pivot, name.split(".")[1], "handbook")
    return out


@lru_cache(maxsize=1)
def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for name in registry():
        table[name.lower()] = name
        short = name.split(".")[-1].lower()
        table.setdefault(short, name)  # NIRCam wins over nothing; HST/JWST band names do not collide here
    table.update({k: v for k, v in _ALIASES.items()})
    return table


def _normalise(raw: str) -> str:
    text = raw.strip().lower()
    text = re.sub(r"^(jwst[._]|hst[._]|spitzer[._])", "", text)
    text = re.sub(r"^(nircam|miri|acs|wfc3|irac|hawki|isaac|vimos)[._]", "", text)
    return text


@cache
def passband_um(name: str) -> tuple[float, float] | None:
    """Where a filter transmits at least half its peak, in micron (None for handbook-only bands).

    >>> lo, hi = passband_um("jwst.nircam.F410M"); round(lo, 2), round(hi, 2)
    (3.86, 4.3)
    """
    path = curve_file(registry()[name])
    if path is None:
        return None
    wave, trans = _read_curve(path)
    inside = wave[trans >= 0.5 * trans.max()]
    return float(inside.min()) / 1e4, float(inside.max()) / 1e4


@cache
def _curve_um(name: str) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A filter's curve in micron with its normalisation int T lambda d lambda (None for handbook-only bands)."""
    path = curve_file(registry()[name])
    if path is None:
        return None
    wave, trans = _read_curve(path)
    wave = wave / 1e4
    return wave, trans, float(np.trapezoid(trans * wave, wave))


def line_weight_per_um(name: str, observed_um: np.ndarray) -> np.ndarray:
    """How much an emission line at ``observed_um`` raises a band's f_nu, per micron of observed EW.

    A line of flux F on a continuum f_lambda (flat across the band) adds F T(l) l to the photon-counting
    integral int f_lambda T lambda d lambda, so the band's flux rises by the factor 1 + EW_obs T(l) l /
    int T lambda d lambda. Near a passband's edge a line counts for less than at its centre, which the
    half-maximum top-hat misses by up to a factor 2. Zero outside the curve and for handbook-only bands.

    >>> w = line_weight_per_um("jwst.nircam.F410M", np.array([4.08, 5.0])); round(float(1 / w[0]), 2), float(w[1])
    (0.44, 0.0)
    """
    curve = _curve_um(name)
    observed = np.asarray(observed_um, dtype=float)
    if curve is None:
        return np.zeros_like(observed)
    wave, trans, norm = curve
    return np.interp(observed, wave, trans, left=0.0, right=0.0) * observed / norm


def get_filter(name: str) -> Filter:
    """Look a band up by any common spelling; an unknown band is an error that lists close names.

    Examples
    --------
    >>> f = get_filter("F444W"); f.name, round(f.pivot_um, 2)
    ('jwst.nircam.F444W', 4.4)
    >>> get_filter("jwst.miri.F770W").instrument
    'miri'
    >>> get_filter("F444X")
    Traceback (most recent call last):
    ...
    astrorag.errors.InputError: unknown filter 'F444X'; close names: f444w...
    """
    table = _lookup()
    key = name.strip().lower()
    if key in table:
        return registry()[table[key]]
    norm = _normalise(name)
    if norm in table:
        return registry()[table[norm]]
    base = re.sub(r"(w|m|lp)[un]$", r"\1", norm)  # "f606wu", "f115wn": the same band, another reduction
    if base in table:
        return registry()[table[base]]
    close = difflib.get_close_matches(norm, sorted(k for k in table if "." not in k), n=4, cutoff=0.6)
    raise InputError(f"unknown filter {name!r}; close names: {', '.join(close) if close else '(none)'}. "
                     f"Known bands: JWST NIRCam/MIRI, HST ACS/WFC3, Spitzer IRAC, VLT U/Ks")
