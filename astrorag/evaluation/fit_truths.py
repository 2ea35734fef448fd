"""Injected truths for ``eval fit``: drawn from distributions, generated with bagpipes, fitted with a model
that differs from the generator where real data would.

Each truth is one kind of cause the baseline model cannot make, with its values drawn (seeded) from ranges
chosen from the literature on high-redshift galaxies and LRDs, or a null truth that *is* the baseline model.
Where real galaxies differ from the fitted model, the generator differs too: the birth-cloud attenuation
ratio eta (fit: 1, CIGALE's one continuum attenuation), the ionisation parameter (fit: log U = -3 fixed), the
AGN disc slopes (fit: -1.56) and broad lines. Null truths keep the fit's model; every other null also carries
the model mismatch real catalogs have that no rule should answer: per-band zero-point offsets of
:data:`ZERO_POINT_MAG` (the size of the zero-point corrections JWST catalogs apply). Noise is drawn the way
the fit assumes it: the depth's noise and the fit's error floor in quadrature, with the catalog error the
depth's alone (the fit adds the floor itself).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..fit.bagpipes_fitter import import_bagpipes
from ..sed.filters import curve_file, get_filter
from ..sed.photometry import Photometry

#: JWST/HST bands of a deep extragalactic field (JADES/CEERS-like), all with shipped curves.
BANDS = ("f435w", "f606w", "f775w", "f090w", "f115w", "f150w", "f200w", "f277w", "f335m", "f356w", "f410m",
         "f444w")
#: 5-sigma point-source depth in AB mag (JADES-like medium depth; the HST bands ~1 mag shallower).
DEPTH_AB = {b: (28.0 if b in ("f435w", "f606w", "f775w") else 29.0) for b in BANDS}
KINDS = ("hidden_agn", "high_av", "recent_burst", "strong_lines", "null")
#: Standard deviation of the per-band zero-point offsets of the mismatched null truths (mag).
ZERO_POINT_MAG = 0.03
#: The parameter each kind's recovery is judged on (bagpipes' name), and where the truth holds it.
KEY_PARAMETER = {"hidden_agn": "agn:f5100A", "high_av": "dust:Av", "recent_burst": "burst:age",
                 "strong_lines": "nebular:logU", "null": "dust:Av"}


@dataclass
class Truth:
    """One injected source: its kind, redshift, bagpipes components and the key parameter's true value."""

    kind: str
    index: int
    redshift: float
    components: dict
    key_value: float
    noise_seed: int
    drawn: dict = field(default_factory=dict)   # the drawn values, readable (for the report)

    @property
    def source_id(self) -> str:
        return f"{self.kind}-{self.index}"


def _uniform(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def _log_uniform(rng, lo, hi) -> float:
    return float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))


def draw_truth(kind: str, index: int, rng: np.random.Generator) -> Truth:
    """One truth of ``kind`` drawn with ``rng``.

    Ranges: redshift 4-7 (where LRDs and JWST's strong-line emitters are found); a host of 10^8.8-10^10.2
    Msun formed over a delayed history (tau 0.1-3 Gyr, age 0.05 Gyr to half the cosmic age), Z 0.1-1 Zsun;
    Calzetti dust with A_V 0-0.8 (inside the baseline's 0.89 cap) and eta 1.5-3. The causes:
    hidden_agn, a disc with 30-300 % of the host's rest 5100 A light behind SMC dust A_V 0.5-2.5, slopes
    -2 to -1 and broad H-alpha of rest EW 0-500 A (LRDs: up to ~800 A, Labbe et al. 2024, arXiv:2412.04557);
    high_av, A_V 1.4-3 (LRD dusty-starburst fits need A_V >= 3, Barro et al. 2024, arXiv:2305.14418);
    recent_burst, 2-20 % of the mass formed 5-30 Myr ago (a burst the lines have forgotten and the UV has
    not); strong_lines, log U -2 to -1.2 on a 20-150 Myr population ([OIII] emitters at z > 6 reach rest EWs
    of 1,000 A). A null truth is the baseline model itself (eta 1, log U -3, A_V inside the cap); odd-numbered nulls
    carry per-band zero-point offsets.
    """
    from ..fit.spec import cosmic_age_myr

    z = _uniform(rng, 4.0, 7.0)
    age_cap_gyr = 0.5 * cosmic_age_myr(z) / 1000
    stars = {"age": _uniform(rng, 0.05, age_cap_gyr), "tau": _log_uniform(rng, 0.1, 3.0),
             "massformed": _uniform(rng, 8.8, 10.2), "metallicity": _log_uniform(rng, 0.1, 1.0)}
    av, eta = _uniform(rng, 0.0, 0.8), _uniform(rng, 1.5, 3.0)
    logu = _uniform(rng, -3.5, -2.5)
    comps: dict = {"redshift": z, "delayed": stars, "nebular": {"logU": logu},
                   "dust": {"type": "Calzetti", "Av": av, "eta": eta}}
    key = av
    zero_points = None
    if kind == "null":
        comps["nebular"] = {"logU": -3.0}
        comps["dust"]["eta"] = 1.0
        if index % 2 == 1:
            zero_points = [round(float(v), 4) for v in rng.normal(0.0, ZERO_POINT_MAG, len(BANDS))]
    elif kind == "hidden_agn":
        comps["agn"] = {"alphalam": _uniform(rng, -2.0, -1.0), "betalam": _uniform(rng, -2.0, -1.0),
                        "share": _log_uniform(rng, 0.3, 3.0), "ew": _uniform(rng, 0.0, 500.0), "sigma": 2000.0}
        comps["agn_dust"] = {"type": "SMC", "Av": _uniform(rng, 0.5, 2.5)}
        key = math.nan   # set in synthesise(): f5100A follows from the host's light
    elif kind == "high_av":
        comps["dust"]["Av"] = key = _uniform(rng, 1.4, 3.0)
        stars["massformed"] += 0.5
    elif kind == "recent_burst":
        fraction = _uniform(rng, 0.02, 0.2)
        burst_age = _uniform(rng, 0.005, 0.03)
        comps["burst"] = {"age": burst_age, "massformed": stars["massformed"] + math.log10(fraction / (1 - fraction)),
                          "metallicity": stars["metallicity"]}
        stars["age"] = max(stars["age"], 0.2)
        key = burst_age
    elif kind == "strong_lines":
        stars["age"] = _uniform(rng, 0.02, 0.15)
        comps["nebular"] = {"logU": _uniform(rng, -2.0, -1.2)}
        key = comps["nebular"]["logU"]
    else:
        raise InputError(f"unknown injection {kind!r}; valid: {', '.join(KINDS)}")
    drawn = {"z": round(z, 3), "A_V": round(comps["dust"]["Av"], 3), "eta": round(comps["dust"]["eta"], 3),
             "logU": round(comps["nebular"]["logU"], 3), "age_gyr": round(stars["age"], 4),
             "log_mass": round(stars["massformed"], 3)}
    if kind == "hidden_agn":
        drawn.update(agn_share_5100=round(comps["agn"]["share"], 3), agn_dust_av=round(comps["agn_dust"]["Av"], 3),
                     broad_halpha_ew=round(comps["agn"]["ew"], 1))
    if kind == "recent_burst":
        drawn.update(burst_age_myr=round(comps["burst"]["age"] * 1000, 1), burst_fraction=round(fraction, 3))
    if zero_points is not None:
        drawn["zero_point_offsets_mag"] = zero_points
    return Truth(kind, index, z, comps, key, int(rng.integers(2 ** 31)), drawn)


def draw_truths(per_kind: int, nulls: int, seed: int) -> list[Truth]:
    """The benchmark's truths: ``per_kind`` of each cause and ``nulls`` null truths, all fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    counts = {kind: (nulls if kind == "null" else per_kind) for kind in KINDS}
    return [draw_truth(kind, i, rng) for kind in KINDS for i in range(counts[kind])]


def synthesise(truth: Truth):
    """Noisy photometry of one truth (uJy), as the loop reads it: one source with the fit's error floor.

    The AGN's f5100A (bagpipes' rest-frame units) is set from the drawn share of the host's own rest 5100 A
    light, so the truth's key value is known exactly in the fit's units.
    """
    from ..settings import FitSettings

    pipes = import_bagpipes()
    filters = [get_filter(b) for b in BANDS]
    curves = [str(curve_file(f)) for f in filters]
    comps = {k: dict(v) if isinstance(v, dict) else v for k, v in truth.components.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "agn" in comps:
            agn = comps.pop("agn")
            host = pipes.model_galaxy({k: v for k, v in comps.items() if k != "agn_dust"}, filt_list=curves,
                                      phot_units="mujy", spec_wavs=np.array([5050.0, 5150.0]) * (1 + truth.redshift))
            # The host's observed f_lambda near rest 5100 A, back to bagpipes' rest-frame units.
            host_rest = float(np.mean(host.spectrum[:, 1])) * (1 + truth.redshift)
            f5100 = agn["share"] * host_rest
            comps["agn"] = {"alphalam": agn["alphalam"], "betalam": agn["betalam"], "f5100A": f5100,
                            "sigma": agn["sigma"], "hanorm": agn["ew"] * f5100}
            truth.key_value = f5100
        model = pipes.model_galaxy(comps, filt_list=curves, phot_units="mujy")
    true = np.asarray(model.photometry, dtype=float)
    if "zero_point_offsets_mag" in truth.drawn:
        true = true * 10 ** (-0.4 * np.asarray(truth.drawn["zero_point_offsets_mag"]))
    rng = np.random.default_rng(truth.noise_seed)
    sigma = np.array([10 ** (-0.4 * (DEPTH_AB[b] - 23.9)) / 5 for b in BANDS])
    floor = FitSettings.error_floor
    flux = true + rng.normal(0, np.sqrt(sigma ** 2 + (floor * true) ** 2))
    phot = Photometry(np.array([truth.source_id]), np.array([truth.redshift]), filters, flux[None, :],
                      sigma[None, :], np.zeros((1, len(BANDS)), dtype=bool), np.array([truth.index]))
    return phot.source(0, error_floor=floor)
