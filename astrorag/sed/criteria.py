"""Published little-red-dot selection criteria, vectorised, each reported with values and thresholds.

Thresholds are those in shared/REFERENCES.md: Labbé et al. 2023b (arXiv:2306.07320), Kokorev et al. 2024
(arXiv:2401.09981), Greene et al. 2024 (arXiv:2309.05714), Kocevski et al. 2024 (arXiv:2404.03576),
Barro et al. 2024 (arXiv:2305.14418) and Akins et al. 2024 (arXiv:2406.10341). Parts that need images
(compactness, r_h) are applied only when the table carries a ``compactness`` column
(f444(0.4")/f444(0.2")); otherwise the criterion is marked photometric-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .diagnostics import fit_lines, magnitudes
from .photometry import Photometry


@dataclass
class Criterion:
    """One criterion over N sources: 1.0 passed, 0.0 failed, NaN not evaluable (bands missing)."""

    name: str
    paper: str
    passed: np.ndarray
    terms: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)  # term -> (values, threshold)
    note: str = ""

    def for_source(self, i: int) -> dict:
        p = self.passed[i]
        return {"name": self.name, "paper": self.paper,
                "passed": None if np.isnan(p) else bool(p), "evaluable": bool(np.isfinite(p)),
                "terms": [{"term": t, "value": None if not np.isfinite(v[i]) else round(float(v[i]), 3),
                           "threshold": thr} for t, (v, thr) in self.terms.items()],
                "note": self.note}


class Colours:
    """AB colours from measured fluxes (any S/N, positive flux), by lower-case band name."""

    def __init__(self, phot: Photometry):
        self.phot = phot
        # Colours use every positive flux; the detections (S/N >= 2) are kept for the slope criteria.
        self.mag, self.mag_err, self.detected = magnitudes(phot)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.snr = phot.flux / phot.err
        self.n = len(phot)

    def m(self, band: str) -> np.ndarray:
        j = self.phot.band_index(band)
        return self.mag[:, j] if j is not None else np.full(self.n, np.nan)

    def sn(self, band: str) -> np.ndarray:
        j = self.phot.band_index(band)
        return self.snr[:, j] if j is not None else np.full(self.n, np.nan)

    def c(self, a: str, b: str) -> np.ndarray:
        return self.m(a) - self.m(b)


def _all(*conds: np.ndarray) -> np.ndarray:
    """AND of 1/0/NaN arrays: NaN if any term is NaN."""
    out = np.ones_like(conds[0], dtype=float)
    for c in conds:
        out = np.where(np.isnan(out) | np.isnan(c), np.nan, out * c)
    return out


def _any(*conds: np.ndarray) -> np.ndarray:
    """OR of 1/0/NaN arrays: 1 if any term passed, NaN if none passed and any was not evaluable."""
    stack = np.vstack(conds)
    passed = np.nansum(stack == 1, axis=0) > 0
    unknown = np.isnan(stack).any(0)
    return np.where(passed, 1.0, np.where(unknown, np.nan, 0.0))


def _cmp(values: np.ndarray, op: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values), op(values).astype(float), np.nan)


def _compactness(phot: Photometry, n: int) -> tuple[np.ndarray, bool]:
    comp = phot.extras.get("compactness")
    if comp is None:
        return np.ones(n), False
    return _cmp(comp, lambda v: v < 1.7), True


def evaluate(phot: Photometry, diag: dict[str, np.ndarray]) -> list[Criterion]:
    """Every criterion for every source."""
    col = Colours(phot)
    n = len(phot)
    comp, has_comp = _compactness(phot, n)
    photometric_only = "" if has_comp else "photometric part only (no compactness column)"
    f444, sn444 = col.m("f444w"), col.sn("f444w")
    red1_terms = {"F115W-F150W": (col.c("f115w", "f150w"), "< 0.8"), "F200W-F277W": (col.c("f200w", "f277w"), "> 0.7"),
                  "F200W-F356W": (col.c("f200w", "f356w"), "> 1.0")}
    red1 = _all(_cmp(red1_terms["F115W-F150W"][0], lambda v: v < 0.8), _cmp(red1_terms["F200W-F277W"][0], lambda v: v > 0.7),
                _cmp(red1_terms["F200W-F356W"][0], lambda v: v > 1.0))
    c150_200, c277_356, c277_444 = col.c("f150w", "f200w"), col.c("f277w", "f356w"), col.c("f277w", "f444w")
    red2 = _all(_cmp(c150_200, lambda v: v < 0.8), _cmp(c277_356, lambda v: v > 0.7), _cmp(c277_444, lambda v: v > 1.0))
    red2k = _all(_cmp(c150_200, lambda v: v < 0.8), _cmp(c277_356, lambda v: v > 0.6), _cmp(c277_444, lambda v: v > 0.7))
    bright = _all(_cmp(f444, lambda v: v < 27.7), _cmp(sn444, lambda v: v > 14))
    c115_200 = col.c("f115w", "f200w")
    not_bd = _cmp(c115_200, lambda v: v > -0.5)
    out = []
    out.append(Criterion("labbe2023b", "2306.07320", _all(bright, _any(red1, red2), comp), {
        **red1_terms, "F150W-F200W": (c150_200, "< 0.8 (red2)"), "F277W-F356W": (c277_356, "> 0.7 (red2)"),
        "F277W-F444W": (c277_444, "> 1.0 (red2)"), "F444W": (f444, "< 27.7"), "S/N(F444W)": (sn444, "> 14")},
        "red1 OR red2, F444W < 27.7, S/N > 14; " + (photometric_only or "compactness < 1.7")))
    out.append(Criterion("kokorev2024", "2401.09981",
                         _all(bright, _any(red1, red2k), np.where(np.isnan(not_bd), 1.0, not_bd), comp), {
        **red1_terms, "F150W-F200W": (c150_200, "< 0.8 (red2)"), "F277W-F356W": (c277_356, "> 0.6 (red2)"),
        "F277W-F444W": (c277_444, "> 0.7 (red2)"), "F115W-F200W": (c115_200, "> -0.5 (not a brown dwarf)"),
        "F444W": (f444, "< 27.7"), "S/N(F444W)": (sn444, "> 14")},
        "modified red1 OR red2 cuts, brown-dwarf cut where F115W exists; " + (photometric_only or "compactness < 1.7")))
    out.append(Criterion("greene2024_vshape", "2309.05714",
                         _all(_cmp(c115_200, lambda v: (v > -0.5) & (v < 1.0)), _cmp(c277_444, lambda v: v > 1.0)), {
        "F115W-F200W": (c115_200, "between -0.5 and 1.0"), "F277W-F444W": (c277_444, "> 1.0")},
        "the v-shape variant of the Labbé cuts"))
    out.append(_kocevski(phot, col))
    out.append(v_shape_criterion(diag))
    out.append(Criterion("barro2024", "2305.14418",
                         _all(_cmp(c277_444, lambda v: v > 1.5), _cmp(f444, lambda v: v < 28.0)),
                         {"F277W-F444W": (c277_444, "> 1.5"), "F444W": (f444, "< 28")}))
    out.append(Criterion("akins2024", "2406.10341",
                         _all(_cmp(sn444, lambda v: v > 12), _cmp(c277_444, lambda v: v > 1.5)),
                         {"S/N(F444W)": (sn444, "> 12"), "F277W-F444W": (c277_444, "> 1.5")},
                         "photometric part only (the compactness ratio needs images)"))
    return out


# Kocevski et al. 2024: bands blue- and redward of the Balmer break, by redshift.
KOCEVSKI_BANDS = [
    (2.0, 3.25, ("f606w", "f814w", "f115w"), ("f150w", "f200w", "f277w")),
    (3.25, 4.75, ("f814w", "f115w", "f150w"), ("f200w", "f277w", "f356w")),
    (4.75, 8.0, ("f115w", "f150w", "f200w"), ("f277w", "f356w", "f444w")),
    (8.0, 99.0, ("f150w", "f200w", "f277w"), ("f356w", "f444w")),
]


def _kocevski(phot: Photometry, col: Colours) -> Criterion:
    mag, mag_err, det = col.mag, col.mag_err, col.detected
    n = len(phot)
    beta_uv, beta_opt = np.full(n, np.nan), np.full(n, np.nan)
    logw = np.log10(phot.pivots)[None, :].repeat(n, 0)
    for lo, hi, blue, red in KOCEVSKI_BANDS:
        rows = (phot.z >= lo) & (phot.z < hi)
        if not rows.any():
            continue
        for names, target in ((blue, beta_uv), (red, beta_opt)):
            idx = [j for j in (phot.band_index(b) for b in names) if j is not None]
            use = np.zeros_like(det)
            use[:, idx] = det[:, idx]
            use &= rows[:, None]
            fit = fit_lines(logw, mag, mag_err, use)
            target[rows] = fit.beta[rows]
    sn444 = col.sn("f444w")
    passed = _all(_cmp(sn444, lambda v: v > 12), _cmp(beta_opt, lambda v: v > 0),
                  _cmp(beta_uv, lambda v: (v > -2.8) & (v < -0.37)))
    return Criterion("kocevski2024", "2404.03576", passed, {
        "S/N(F444W)": (sn444, "> 12"), "beta_opt": (beta_opt, "> 0"), "beta_UV": (beta_uv, "between -2.8 and -0.37")},
        "slopes from the redshift-dependent band sets; r_h < 1.5 r_h(stars) needs images and is not applied")


#: Without sizes, how far (mag) the rest-optical must rise above the UV power law (see :func:`is_lrd`).
RED_EXCESS_MIN = 0.75


def v_shape_criterion(diag: dict[str, np.ndarray]) -> Criterion:
    """astrorag's photometric stand-in for compactness: a V shape or strong break over a blue-enough UV."""
    excess = diag["red_excess_mag"]
    return Criterion("v_shape_excess", "astrorag", _cmp(excess, lambda v: v > RED_EXCESS_MIN),
                     {"red_excess_mag": (excess, f"> {RED_EXCESS_MIN}")},
                     "rest-optical band brightest above the extrapolated UV power law; used with the colour "
                     "cuts when no compactness is available (chosen on the Kokorev development set and "
                     "synthetic galaxies, see README)")


def is_lrd(criteria: list[Criterion], has_compactness: bool = False) -> np.ndarray:
    """The headline flag: Kokorev et al. 2024 where its bands exist, else Kocevski et al. 2024, else Labbé.

    Without a compactness column, the Kokorev colour cuts also admit dusty and evolved galaxies whose
    continuum simply rises in f_nu; the flag then also asks for the V shape (``v_shape_excess``).
    1.0 / 0.0, or NaN where no criterion can be evaluated.
    """
    by = {c.name: c.passed for c in criteria}
    out = by["kokorev2024"].copy()
    if not has_compactness and "v_shape_excess" in by:
        v = by["v_shape_excess"]
        out = np.where(out == 1, np.where(np.isnan(v), np.nan, v), out)
    for fallback in ("kocevski2024", "labbe2023b"):
        out = np.where(np.isnan(out), by[fallback], out)
    return out
