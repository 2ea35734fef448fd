"""Published little-red-dot selection criteria, vectorised, each reported with values and thresholds.

Thresholds are those in shared/REFERENCES.md: Labbé et al. 2023b (arXiv:2306.07320), Kokorev et al. 2024
(arXiv:2401.09981), Greene et al. 2024 (arXiv:2309.05714), Kocevski et al. 2024 (arXiv:2404.03576),
Barro et al. 2024 (arXiv:2305.14418) and Akins et al. 2024 (arXiv:2406.10341). Parts that need images
(compactness, r_h) are applied only when the table carries a ``compactness`` column
(f444(0.4")/f444(0.2")); otherwise the criterion is marked photometric-only.

Logic is three-valued (Kleene): 1 passed, 0 failed, NaN unknown. ``False AND unknown`` is ``False``
(a source with S/N(F444W) = 5 fails a S/N > 14 cut whatever its colours), ``True OR unknown`` is
``True``. Colours are intervals: a band with a positive measured flux is a point (the papers apply their
cuts to catalog fluxes at any S/N), a band with no positive flux or flagged as an upper limit is "fainter
than its 2-sigma limit", a missing band is unknown; a cut is decided when the whole interval lies on one
side of the threshold, so a limit decides a cut exactly when it can.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .diagnostics import (
    BALMER_LIMIT_UM,
    EW_MAX_OIII_HB_AA,
    LINE_READING_REJECT_P,
    STRONG_BREAK_MAG,
    Diagnostics,
    fit_lines,
)
from .magnitudes import Magnitudes
from .photometry import Photometry


@dataclass
class Criterion:
    """One criterion over N sources: 1.0 passed, 0.0 failed, NaN not evaluable (bands missing)."""

    name: str
    paper: str
    passed: np.ndarray
    terms: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)  # term -> (values, threshold)
    note: str = ""
    published: bool = True  # False for astrorag's own photometric stand-in

    def for_source(self, i: int) -> dict:
        p = self.passed[i]
        return {"name": self.name, "paper": self.paper,
                "passed": None if np.isnan(p) else bool(p), "evaluable": bool(np.isfinite(p)),
                "terms": [{"term": t, "value": None if not np.isfinite(v[i]) else round(float(v[i]), 3),
                           "threshold": thr} for t, (v, thr) in self.terms.items()],
                "note": self.note}


# ---- three-valued logic -------------------------------------------------------------------------

def all_of(*conds: np.ndarray) -> np.ndarray:
    """Kleene AND of 1/0/NaN arrays: 0 if any term failed, else NaN if any is unknown, else 1.

    >>> all_of(np.array([0.0, 1.0, 1.0]), np.array([np.nan, np.nan, 1.0])).tolist()
    [0.0, nan, 1.0]
    """
    stack = np.vstack(conds)
    return np.where((stack == 0).any(0), 0.0, np.where(np.isnan(stack).any(0), np.nan, 1.0))


def any_of(*conds: np.ndarray) -> np.ndarray:
    """Kleene OR: 1 if any term passed, else NaN if any is unknown, else 0.

    >>> any_of(np.array([1.0, 0.0, 0.0]), np.array([np.nan, np.nan, 0.0])).tolist()
    [1.0, nan, 0.0]
    """
    stack = np.vstack(conds)
    return np.where((stack == 1).any(0), 1.0, np.where(np.isnan(stack).any(0), np.nan, 0.0))


def _cmp(values: np.ndarray, op: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values), op(values).astype(float), np.nan)


# ---- colours as intervals -----------------------------------------------------------------------

@dataclass
class Colour:
    """A colour a - b per source: a central value where both bands are measured and [lo, hi] bounds."""

    value: np.ndarray  # both bands measured, else NaN (what the reports show)
    lo: np.ndarray
    hi: np.ndarray

    def above(self, t: float) -> np.ndarray:
        """colour > t: 1 when even the bluest allowed colour is redder, 0 when even the reddest is not."""
        return np.where(self.lo > t, 1.0, np.where(self.hi <= t, 0.0, np.nan))

    def below(self, t: float) -> np.ndarray:
        return np.where(self.hi < t, 1.0, np.where(self.lo >= t, 0.0, np.nan))

    def between(self, lo: float, hi: float) -> np.ndarray:
        return all_of(self.above(lo), self.below(hi))


class Colours:
    """AB colours and S/N by lower-case band name, from the table's :class:`Magnitudes`."""

    def __init__(self, phot: Photometry, mags: Magnitudes):
        self.phot, self.mags, self.n = phot, mags, len(phot)
        self.measured = np.isfinite(mags.mag) & ~phot.upper
        # Bright bound, faint bound of each magnitude: a point when measured; [2-sigma limit, inf) when not.
        self._lo = np.where(self.measured, mags.mag, np.where(np.isfinite(mags.limit), mags.limit, -np.inf))
        self._hi = np.where(self.measured, mags.mag, np.inf)

    def _col(self, arr: np.ndarray, band: str, fill: float) -> np.ndarray:
        j = self.phot.band_index(band)
        return arr[:, j] if j is not None else np.full(self.n, fill)

    def m(self, band: str) -> np.ndarray:
        """Magnitude where measured (positive flux, not a limit), else NaN."""
        j = self.phot.band_index(band)
        return np.where(self.measured[:, j], self.mags.mag[:, j], np.nan) if j is not None \
            else np.full(self.n, np.nan)

    def sn(self, band: str) -> np.ndarray:
        return self._col(self.mags.snr, band, np.nan)

    def c(self, a: str, b: str) -> Colour:
        lo = self._col(self._lo, a, -np.inf) - self._col(self._hi, b, np.inf)
        hi = self._col(self._hi, a, np.inf) - self._col(self._lo, b, -np.inf)
        with np.errstate(invalid="ignore"):
            value = self.m(a) - self.m(b)
        return Colour(value, lo, hi)  # bounds are finite or infinite, never NaN (see __init__)


def _compactness(phot: Photometry, n: int) -> tuple[np.ndarray, bool]:
    comp = phot.extras.get("compactness")
    if comp is None:
        return np.ones(n), False
    return _cmp(comp, lambda v: v < 1.7), True


def evaluate(phot: Photometry, mags: Magnitudes, diag: Diagnostics, col: Colours | None = None) -> list[Criterion]:
    """Every criterion for every source."""
    col = col or Colours(phot, mags)
    n = len(phot)
    comp, has_comp = _compactness(phot, n)
    photometric_only = "" if has_comp else "photometric part only (no compactness column)"
    f444, sn444 = col.m("f444w"), col.sn("f444w")
    c115_150, c200_277, c200_356 = col.c("f115w", "f150w"), col.c("f200w", "f277w"), col.c("f200w", "f356w")
    c150_200, c277_356, c277_444 = col.c("f150w", "f200w"), col.c("f277w", "f356w"), col.c("f277w", "f444w")
    c115_200 = col.c("f115w", "f200w")
    red1 = all_of(c115_150.below(0.8), c200_277.above(0.7), c200_356.above(1.0))
    red2 = all_of(c150_200.below(0.8), c277_356.above(0.7), c277_444.above(1.0))
    red2k = all_of(c150_200.below(0.8), c277_356.above(0.6), c277_444.above(0.7))
    bright = all_of(_cmp(f444, lambda v: v < 27.7), _cmp(sn444, lambda v: v > 14))
    # The brown-dwarf cut vetoes only on evidence: a missing or undecided F115W-F200W does not veto.
    not_bd = c115_200.above(-0.5)
    not_bd = np.where(np.isnan(not_bd), 1.0, not_bd)
    red1_terms = {"F115W-F150W": (c115_150.value, "< 0.8"), "F200W-F277W": (c200_277.value, "> 0.7"),
                  "F200W-F356W": (c200_356.value, "> 1.0")}
    out = [
        Criterion("labbe2023b", "2306.07320", all_of(bright, any_of(red1, red2), comp), {
            **red1_terms, "F150W-F200W": (c150_200.value, "< 0.8 (red2)"),
            "F277W-F356W": (c277_356.value, "> 0.7 (red2)"), "F277W-F444W": (c277_444.value, "> 1.0 (red2)"),
            "F444W": (f444, "< 27.7"), "S/N(F444W)": (sn444, "> 14")},
            "red1 OR red2, F444W < 27.7, S/N > 14; " + (photometric_only or "compactness < 1.7")),
        Criterion("kokorev2024", "2401.09981", all_of(bright, any_of(red1, red2k), not_bd, comp), {
            **red1_terms, "F150W-F200W": (c150_200.value, "< 0.8 (red2)"),
            "F277W-F356W": (c277_356.value, "> 0.6 (red2)"), "F277W-F444W": (c277_444.value, "> 0.7 (red2)"),
            "F115W-F200W": (c115_200.value, "> -0.5 (not a brown dwarf)"),
            "F444W": (f444, "< 27.7"), "S/N(F444W)": (sn444, "> 14")},
            "modified red1 OR red2 cuts, brown-dwarf cut where F115W exists; "
            + (photometric_only or "compactness < 1.7")),
        Criterion("greene2024_vshape", "2309.05714", all_of(c115_200.between(-0.5, 1.0), c277_444.above(1.0)), {
            "F115W-F200W": (c115_200.value, "between -0.5 and 1.0"), "F277W-F444W": (c277_444.value, "> 1.0")},
            "the v-shape variant of the Labbé cuts"),
        _kocevski(phot, col, diag),
        v_shape_criterion(diag),
        Criterion("barro2024", "2305.14418", all_of(c277_444.above(1.5), _cmp(f444, lambda v: v < 28.0)),
                  {"F277W-F444W": (c277_444.value, "> 1.5"), "F444W": (f444, "< 28")}),
        Criterion("akins2024", "2406.10341", all_of(_cmp(sn444, lambda v: v > 12), c277_444.above(1.5)),
                  {"S/N(F444W)": (sn444, "> 12"), "F277W-F444W": (c277_444.value, "> 1.5")},
                  "photometric part only (the compactness ratio needs images)"),
    ]
    return out


# Kocevski et al. 2024: bands blue- and redward of the Balmer break, by redshift.
KOCEVSKI_BANDS = [
    (2.0, 3.25, ("f606w", "f814w", "f115w"), ("f150w", "f200w", "f277w")),
    (3.25, 4.75, ("f814w", "f115w", "f150w"), ("f200w", "f277w", "f356w")),
    (4.75, 8.0, ("f115w", "f150w", "f200w"), ("f277w", "f356w", "f444w")),
    (8.0, 99.0, ("f150w", "f200w", "f277w"), ("f356w", "f444w")),
]


def line_explained(diag: Diagnostics) -> np.ndarray:
    """1 where the red rest-optical side can be [OIII]+H-beta on a blue continuum, 0 where it cannot, NaN
    where the bands cannot tell (the lines fit, and no rest-optical band free of them shows whether a
    continuum rises too, as at z ~ 6.8-7.2 where F356W, F410M and F444W all hold them).

    Star-forming extreme emitters at z ~ 7 have blue continua and rest EW([OIII]+H-beta) of 420-6850 A,
    log-normal about 1700 A (Daikuhara et al. 2025, arXiv:2507.13456); bluer continua go with stronger lines
    (Withers et al. 2026, arXiv:2606.06585), and such emitters pass for LRD candidates in broad bands (Zhang
    et al. 2025, arXiv:2506.04350). "A line could make this" is not "a line made this": LRD hosts have strong
    [OIII] too (EW([OIII]5008) ~ 1100 A, Sun et al. 2026, arXiv:2601.20929) and a dense-gas continuum rises
    through the same bands. So the red side counts as line-made only when the emitter reading
    (:func:`~astrorag.sed.diagnostics.emitter_reading`) survives every rest-optical band at once, a medium
    band's larger rise included, with p >= :data:`~astrorag.sed.diagnostics.LINE_READING_REJECT_P`, needs an
    EW within the range measured (<= 6850 A), and the bands without the lines rise above the UV power law by
    less than a strong Balmer break (:data:`~astrorag.sed.diagnostics.STRONG_BREAK_MAG`, 0.5 mag): these
    emitters are young (< 5-10 Myr, Boyett et al. 2024, arXiv:2401.16934), so they have no break. H-alpha is
    not among these lines: broad H-alpha is part of what an LRD is.
    """
    ew, free, p = diag.line_ew_fit_aa, diag.excess_line_free_mag, diag.line_reading_p
    if ew is None or p is None or free is None:
        return np.zeros(len(diag.beta_uv))
    has_lines = np.isfinite(p)
    with np.errstate(invalid="ignore"):
        possible = has_lines & (p >= LINE_READING_REJECT_P) & (ew <= EW_MAX_OIII_HB_AA)
        free_ok = np.where(np.isfinite(free), (free <= STRONG_BREAK_MAG).astype(float), np.nan)
    # Without a line-free rest-optical band, lines that fit every band (a medium band's larger rise
    # included) leave open whether a continuum rises beneath them, as in LRDs whose hosts have strong
    # [OIII]: undecided, and the colour cuts decide. Lines that cannot fit them are ruled out either way.
    return np.where(possible, free_ok, 0.0)


def line_probability(diag: Diagnostics) -> np.ndarray:
    """How well [OIII]+H-beta on a blue continuum accounts for the red side, 0-1 (NaN where no band holds
    the lines): the emitter reading's p-value, 0 where :func:`line_explained` rules it out."""
    p = diag.line_reading_p
    if p is None:
        return np.full(len(diag.beta_uv), np.nan)
    explained = line_explained(diag)
    return np.where(np.isfinite(p), np.where(explained == 0, 0.0, p), np.nan)


def lrd_likeness(score: np.ndarray, diag: Diagnostics) -> np.ndarray:
    """An LRD likeness on a sliding scale, 0-1, beside the yes/no flag: the share of the published criteria
    that pass (:func:`lrd_flag`'s score) times the chance that the red side is not [OIII]+H-beta on a blue
    continuum (1 - :func:`line_probability`, 1 where no band holds those lines). The field reads LRD-ness as
    a continuum of V-shape strength rather than a class (Billand et al. 2026, arXiv:2604.11677); a source
    every cut selects whose red side a line explains well is not as LRD-like as one no line can make.

    >>> from astrorag.sed import synthetic as syn
    >>> from astrorag.sed.analysis import analyse
    >>> a = analyse(syn.population("lrd", 50, seed=2))
    >>> bool((a.lrd_likeness <= a.lrd_score + 1e-12).all())
    True
    """
    line = line_probability(diag)
    return np.asarray(score, dtype=float) * (1.0 - np.where(np.isfinite(line), line, 0.0))


def _kocevski(phot: Photometry, col: Colours, diag: Diagnostics) -> Criterion:
    mags = col.mags
    n = len(phot)
    beta_uv, beta_opt = np.full(n, np.nan), np.full(n, np.nan)
    logw = np.log10(phot.pivots)[None, :].repeat(n, 0)
    oiii = diag.oiii_bands if diag.oiii_bands is not None else np.zeros_like(mags.detected)
    for lo, hi, blue, red in KOCEVSKI_BANDS:
        rows = (phot.z >= lo) & (phot.z < hi)
        if not rows.any():
            continue
        for names, target in ((blue, beta_uv), (red, beta_opt)):
            idx = [j for j in (phot.band_index(b) for b in names) if j is not None]
            use = np.zeros_like(mags.detected)
            use[:, idx] = mags.detected[:, idx]
            use &= rows[:, None]
            fit = fit_lines(logw, mags.mag, mags.err, use)
            if target is beta_opt:
                # The optical slope from the bands without [OIII]+H-beta, where two of them remain redward of
                # the Balmer limit: the slope is to measure the continuum there, and those lines can fake a
                # red one on their own (at z > 7 the set's F277W has moved blueward of the limit).
                redward = logw - np.log10(1 + phot.z)[:, None] >= np.log10(BALMER_LIMIT_UM)
                free = fit_lines(logw, mags.mag, mags.err, use & ~oiii & redward)
                fit_beta = np.where(np.isfinite(free.beta), free.beta, fit.beta)
                target[rows] = fit_beta[rows]
            else:
                target[rows] = fit.beta[rows]
    sn444 = col.sn("f444w")
    # Undecided (no line-free optical band) leaves Kocevski's slope, which rests on the line bands, unknown.
    lines = line_explained(diag)
    # Outside the redshifts the band sets were designed for (z < 2, or no redshift) the slopes are unknown.
    passed = all_of(_cmp(sn444, lambda v: v > 12), _cmp(beta_opt, lambda v: v > 0),
                    _cmp(beta_uv, lambda v: (v > -2.8) & (v < -0.37)), 1.0 - lines)
    return Criterion("kocevski2024", "2404.03576", passed, {
        # Kocevski's slopes come from their own band sets, so they differ from the diagnostics' beta_UV/beta_opt
        "beta_opt (Kocevski's bands)": (beta_opt, "> 0, without [OIII]+H-beta bands where two remain"),
        "beta_UV (Kocevski's bands)": (beta_uv, "between -2.8 and -0.37"),
        "S/N(F444W)": (sn444, "> 12"),
        "EW([OIII]+H-beta) needed": (diag.line_ew_needed_aa, "the rise a continuum-following line would need"),
        "p(emitter reading)": (diag.line_reading_p, f"< {LINE_READING_REJECT_P:g}, or the line-free optical bands "
                                                     f"red")},
        "slopes from the redshift-dependent band sets (z >= 2); a red side that [OIII]+H-beta can make on a blue "
        "continuum does not count; r_h < 1.5 r_h(stars) needs images and is not applied")


#: Without sizes, how far (mag) the rest-optical must rise above the UV power law (see :func:`lrd_flag`).
RED_EXCESS_MIN = 0.75


def v_shape_criterion(diag: Diagnostics) -> Criterion:
    """astrorag's photometric stand-in for compactness: a V shape or strong break over a blue-enough UV, that
    [OIII]+H-beta on a blue continuum cannot make (:func:`line_explained`)."""
    excess = diag.red_excess_mag
    # Only a decided explanation removes the stand-in's vote: where no line-free band can tell, the published
    # colour cuts (which must select too) decide.
    lines = np.nan_to_num(line_explained(diag), nan=0.0)
    passed = all_of(_cmp(excess, lambda v: v > RED_EXCESS_MIN), 1.0 - lines)
    return Criterion("v_shape_excess", "astrorag", passed,
                     {"red_excess_mag": (excess, f"> {RED_EXCESS_MIN}"),
                      "EW([OIII]+H-beta) needed": (diag.line_ew_needed_aa, "the rise a continuum-following line "
                                                                            "would need"),
                      "p(emitter reading)": (diag.line_reading_p, f"< {LINE_READING_REJECT_P:g}, or the "
                                                                   f"line-free optical bands red")},
                     "rest-optical band brightest above the extrapolated UV power law, not by [OIII]+H-beta alone; "
                     "used with the colour cuts when no compactness is available", published=False)


#: Published selections whose cuts ask for both a blue rest-UV and a red rest-optical side: any one of them
#: selects; the others (Greene's v-shape variant, Barro's and Akins's red-only cuts) vote in the score.
SELECTING = ("kokorev2024", "labbe2023b", "kocevski2024")


@dataclass
class LRDVerdict:
    """The headline flag (1/0/NaN), a score in [0, 1] and, per source, the criteria that agree (a bit mask
    over ``names``: one integer per source keeps catalogs of millions fast)."""

    flag: np.ndarray
    score: np.ndarray
    votes: np.ndarray
    names: tuple[str, ...]


def unpack_votes(mask: int, names: tuple[str, ...]) -> list[str]:
    """The criteria named by a vote mask.

    >>> unpack_votes(0b101, ("a", "b", "c"))
    ['a', 'c']
    """
    return [name for bit, name in enumerate(names) if mask >> bit & 1]


#: The published LRD selections (Labbé et al. 2023, Kocevski et al. 2024, Kokorev et al. 2024) were built
#: for JWST sources at z ~ 4-9; at a known redshift below 2 their bands sample other rest wavelengths, so
#: a source there is not called a little red dot, whatever its colours.
LRD_MIN_REDSHIFT = 2.0


def lrd_flag(criteria: list[Criterion], has_compactness: bool = False,
             redshift: np.ndarray | None = None) -> LRDVerdict:
    """Combine the published criteria into one verdict.

    flag = (Kokorev OR Labbé OR Kocevski) AND shape, in Kleene logic, where shape is the compactness cut when
    the table has sizes and astrorag's V-shape excess when it has not. The fixed colour cuts of Labbé and
    Kokorev and the redshift-aware slopes of Kocevski each select LRDs the others miss (the fixed colours lose
    z > 8 sources whose break has moved into F356W), so any one of them selects. Without sizes the colour cuts
    also pass dusty and evolved galaxies whose continuum simply rises in f_nu; the V-shape excess removes them.

    score = the share of evaluable criteria (the six published ones and the shape) that pass; NaN when none
    can be evaluated. At a known redshift below :data:`LRD_MIN_REDSHIFT` the flag is 0.
    """
    by = {c.name: c.passed for c in criteria}
    selection = any_of(*(by[name] for name in SELECTING if name in by))
    shape = np.ones_like(selection) if has_compactness else by.get("v_shape_excess", np.ones_like(selection))
    flag = all_of(selection, shape)
    if redshift is not None:
        z = np.asarray(redshift, dtype=float)
        flag = np.where(np.isfinite(z) & (z < LRD_MIN_REDSHIFT), 0.0, flag)
    stack = np.vstack([c.passed for c in criteria])
    evaluable = np.isfinite(stack).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(evaluable > 0, (stack == 1).sum(0) / np.maximum(evaluable, 1), np.nan)
    votes = ((stack == 1).astype(np.int64) << np.arange(len(criteria), dtype=np.int64)[:, None]).sum(0)
    return LRDVerdict(flag, score, votes, tuple(c.name for c in criteria))
