"""Deterministic SED diagnostics, vectorised over sources: slopes, V shape, Balmer break, mid-IR, residuals.

All slopes come from weighted least-squares power-law fits to AB magnitudes in rest-frame windows,
m = -2.5 (beta + 2) log10(lambda) + c (f_lambda ~ lambda^beta), the form Kocevski et al. 2024
(arXiv:2404.03576) use; the mid-IR slope is alpha in f_nu ~ lambda^alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph.regions import REGIONS
from .filters import line_weight_per_um
from .magnitudes import Magnitudes
from .photometry import Photometry

BALMER_LIMIT_UM = 0.3645
UV_WINDOW = (0.125, BALMER_LIMIT_UM)       # redward of Ly-alpha, blueward of the Balmer limit
OPT_WINDOW = (0.38, 1.0)                   # redward of the Balmer break
#: A Balmer-break colour above this is a strong break (the symptom strong_balmer_break)
STRONG_BREAK_MAG = 0.5
MIR_WINDOW = (1.0, 5.0)                    # rest near/mid-IR where hot dust rises
MAG_ERR_FLOOR = 0.05                       # systematic floor so one tiny error cannot dominate a fit
RESIDUAL_THRESHOLD = 2.0                   # mean (obs - model)/err of a region that counts as a misfit


@dataclass
class LineFit:
    slope: np.ndarray      # d m / d log10(lambda)
    intercept: np.ndarray
    n: np.ndarray          # bands used

    @property
    def beta(self) -> np.ndarray:
        """UV/optical slope beta in f_lambda ~ lambda^beta."""
        return -self.slope / 2.5 - 2.0

    @property
    def alpha(self) -> np.ndarray:
        """Slope alpha in f_nu ~ lambda^alpha."""
        return -self.slope / 2.5


@dataclass
class Diagnostics:
    """Every diagnostic as an array of length N (NaN where the bands do not allow a value).

    The UV and optical line fits are kept (m = slope log10(lambda_rest) + intercept), so the plot draws the
    very lines the slopes came from.
    """

    beta_uv: np.ndarray
    n_uv: np.ndarray
    beta_opt: np.ndarray
    n_opt: np.ndarray
    turnover_um: np.ndarray
    balmer_break_mag: np.ndarray
    red_excess_mag: np.ndarray
    mir_slope: np.ndarray
    n_mir: np.ndarray
    uv_fit: LineFit
    opt_fit: LineFit
    resid: dict[str, np.ndarray] = field(default_factory=dict)    # region -> mean (obs - model)/err
    n_resid: dict[str, np.ndarray] = field(default_factory=dict)  # region -> bands used
    chi2_red: np.ndarray | None = None
    line_resid: np.ndarray | None = None  # line bands' mean (obs - model)/err above their line-free neighbours
    #: what [OIII]+H-beta could do to the rest optical (see :func:`line_measures`)
    optical_slope_line_free: np.ndarray | None = None
    excess_line_free_mag: np.ndarray | None = None
    line_ew_needed_aa: np.ndarray | None = None
    line_ew_fit_aa: np.ndarray | None = None
    line_reading_p: np.ndarray | None = None
    oiii_bands: np.ndarray | None = None  # (N, B)
    band_names: tuple[str, ...] = ()

    def line_boosted_bands(self, i: int) -> list[str]:
        """The bands of source ``i`` that hold [OIII]+H-beta at its redshift."""
        if self.oiii_bands is None:
            return []
        return [name for name, hit in zip(self.band_names, self.oiii_bands[i]) if hit]

    #: the scalar diagnostics, in display order (catalog columns and the advice's ``diagnostics``)
    SCALARS = ("beta_uv", "n_uv", "beta_opt", "n_opt", "turnover_um", "balmer_break_mag", "red_excess_mag",
               "mir_slope", "n_mir", "optical_slope_line_free", "excess_line_free_mag", "line_ew_needed_aa",
               "line_ew_fit_aa", "line_reading_p")

    def columns(self) -> dict[str, np.ndarray]:
        """Flat name -> array view, with residuals as ``resid_<region>`` and ``n_<region>``."""
        n = len(self.beta_uv)
        out = {name: getattr(self, name) if getattr(self, name) is not None else np.full(n, np.nan)
               for name in self.SCALARS}
        for region, values in self.resid.items():
            out[f"resid_{region}"] = values
            out[f"n_{region}"] = self.n_resid[region]
        out["chi2_red"] = self.chi2_red if self.chi2_red is not None else np.full(n, np.nan)
        if self.line_resid is not None:
            out["resid_lines"] = self.line_resid
        return out

    def for_source(self, i: int) -> dict[str, Any]:
        """Plain values of source ``i`` (None where undefined), without the fit columns when there is no fit."""
        out = {}
        for name, values in self.columns().items():
            if name == "chi2_red" and self.chi2_red is None:
                continue
            v = values[i]
            out[name] = None if not np.isfinite(v) else (int(v) if name.startswith("n_") else round(float(v), 4))
        out["line_boosted_bands"] = self.line_boosted_bands(i)
        return out


def rest_wavelengths(phot: Photometry) -> np.ndarray:
    return phot.pivots[None, :] / (1.0 + phot.z[:, None])


def fit_lines(logw: np.ndarray, mag: np.ndarray, mag_err: np.ndarray, use: np.ndarray) -> LineFit:
    """Weighted least squares of mag against log10(lambda), one line per row, only where ``use``."""
    sig = np.sqrt(np.nan_to_num(mag_err, nan=1.0) ** 2 + MAG_ERR_FLOOR ** 2)
    w = np.where(use, 1.0 / sig ** 2, 0.0)
    x = np.where(use, logw, 0.0)
    y = np.where(use, mag, 0.0)
    s, sx, sy = w.sum(1), (w * x).sum(1), (w * y).sum(1)
    sxx, sxy = (w * x * x).sum(1), (w * x * y).sum(1)
    det = s * sxx - sx * sx
    n = use.sum(1)
    ok = (n >= 2) & (det > 1e-12 * np.maximum(s * s, 1e-30))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(ok, (s * sxy - sx * sy) / det, np.nan)
        intercept = np.where(ok, (sy - slope * sx) / s, np.nan)
    return LineFit(slope, intercept, n)


def _nearest_band(rest: np.ndarray, usable: np.ndarray, lo: float, hi: float, target: float) -> np.ndarray:
    """Index of the usable band whose rest wavelength is closest to ``target`` inside [lo, hi], or -1."""
    inside = usable & (rest >= lo) & (rest <= hi)
    dist = np.where(inside, np.abs(np.log(rest / target)), np.inf)
    idx = np.argmin(dist, axis=1)
    return np.where(np.isfinite(dist[np.arange(len(idx)), idx]), idx, -1)


def compute(phot: Photometry, mags: Magnitudes | None = None) -> Diagnostics:
    """All diagnostics, vectorised over the sources."""
    mags = mags or Magnitudes.of(phot)
    mag, mag_err, det = mags.mag, mags.err, mags.detected
    rest = rest_wavelengths(phot)
    with np.errstate(divide="ignore", invalid="ignore"):
        logw = np.log10(rest)
    has_z = np.isfinite(phot.z)[:, None]
    uv = fit_lines(logw, mag, mag_err, det & has_z & (rest >= UV_WINDOW[0]) & (rest < UV_WINDOW[1]))
    opt = fit_lines(logw, mag, mag_err, det & has_z & (rest >= OPT_WINDOW[0]) & (rest <= OPT_WINDOW[1]))
    is_miri = np.array([b.instrument == "miri" for b in phot.bands])[None, :]
    mir_use = det & has_z & (rest >= MIR_WINDOW[0]) & (rest <= MIR_WINDOW[1])
    mir = fit_lines(logw, mag, mag_err, mir_use)
    mir_ok = (mir_use & (is_miri | (rest >= 2.0))).any(1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        turnover = np.where(np.isfinite(uv.slope) & np.isfinite(opt.slope) & (np.abs(uv.slope - opt.slope) > 1e-6),
                            10 ** ((opt.intercept - uv.intercept) / (uv.slope - opt.slope)), np.nan)
    # How far the rest-optical rises above the UV power law: large for a V shape or a strong break.
    with np.errstate(invalid="ignore"):
        predicted = uv.slope[:, None] * logw + uv.intercept[:, None]
        in_opt = det & has_z & (rest >= OPT_WINDOW[0]) & (rest <= OPT_WINDOW[1])
        excess = np.where(in_opt & np.isfinite(predicted), predicted - mag, -np.inf).max(1)
    red_excess = np.where(np.isfinite(excess), excess, np.nan)
    rows = np.arange(len(phot))
    blue = _nearest_band(rest, det, 0.28, BALMER_LIMIT_UM, 0.33)
    red = _nearest_band(rest, det, 0.37, 0.50, 0.42)
    break_colour = np.where((blue >= 0) & (red >= 0), mag[rows, blue] - mag[rows, red], np.nan)
    resid, n_resid, chi2_red = residuals(phot, rest)
    line_resid = line_residuals(phot, rest) if phot.model is not None else None
    lines = line_measures(phot, mags, rest, logw, uv)
    return Diagnostics(
        **lines, band_names=tuple(b.short for b in phot.bands),
        beta_uv=uv.beta, n_uv=uv.n, beta_opt=opt.beta, n_opt=opt.n,
        turnover_um=np.where(np.isfinite(turnover) & (turnover > 0.1) & (turnover < 2.0), turnover, np.nan),
        balmer_break_mag=break_colour, red_excess_mag=red_excess,
        mir_slope=np.where(mir_ok, mir.alpha, np.nan), n_mir=np.where(mir_ok, mir.n, 0),
        uv_fit=uv, opt_fit=opt, resid=resid, n_resid=n_resid, chi2_red=chi2_red, line_resid=line_resid)


#: Strong optical lines (rest micron): H-alpha, and [OIII] 4959/5007 with H-beta.
STRONG_LINES_UM = (0.6563, 0.5007, 0.4959, 0.4861)


#: [OIII] 4959, 5007 and H-beta (rest micron): the lines of star-forming extreme emitters. At z ~ 7-9 they
#: fall in F410M/F444W, where H-alpha has left the bands, and alone can make a blue galaxy's F444W look like
#: a red continuum.
OIII_HB_UM = (0.4861, 0.4959, 0.5007)
#: The largest rest-frame EW([OIII]+H-beta) among the 119 F410M-excess emitters at z ~ 7 of Daikuhara et al.
#: 2025 (arXiv:2507.13456; 420-6850 A, median about 1700 A): a boost that needs more is not these lines.
EW_MAX_OIII_HB_AA = 6850.0
#: The EW distribution of those emitters: log-normal with median 1700 A and 16 % above 3000 A (19 of 119),
#: i.e. sigma(ln EW) = ln(3000 / 1700) / 1.0 = 0.57 (Daikuhara et al. 2025, arXiv:2507.13456).
EW_OIII_HB_MEDIAN_AA, EW_OIII_HB_SIGMA_LN = 1700.0, 0.57
#: Shares of the [OIII]+H-beta flux: H-beta : [OIII]4959 : [OIII]5007 = 1 : 2 : 6 ([OIII]5007/4959 = 2.98 by
#: atomic physics; [OIII]5007/H-beta ~ 6 in z > 6 star-forming galaxies).
OIII_HB_SHARES = {0.4861: 1 / 9, 0.4959: 2 / 9, 0.5007: 6 / 9}
#: How far an emitter's rest-optical continuum may sit off its UV power law (1 sigma, mag): the nebular
#: continuum and a little dust move it by tenths of a magnitude, and these young galaxies have no Balmer
#: break (Boyett et al. 2024, arXiv:2401.16934), so an offset of a strong break (STRONG_BREAK_MAG) is 2 sigma.
EMITTER_CONTINUUM_SIGMA_MAG = 0.25
#: Per band, beyond the catalog's error (mag): line ratios ([OIII]/H-beta 3-10 moves a band holding only
#: H-beta by a factor 2 in its share) and zero points.
LINE_BAND_SYSTEMATIC_MAG = 0.1
#: The emitter reading is rejected below this p-value (the fits' own bar for "the data reject the model").
LINE_READING_REJECT_P = 0.01


def holds_strong_line(filter_name: str, z, lines: tuple[float, ...] = STRONG_LINES_UM) -> np.ndarray:
    """Does the filter's half-maximum passband hold one of ``lines`` (rest micron) at redshift(s) ``z``?
    (False for a band known only by its pivot.)"""
    from .filters import passband_um

    band = passband_um(filter_name)
    observed = np.outer(1 + np.atleast_1d(np.asarray(z, dtype=float)), lines)  # (N, lines), micron
    if band is None:
        return np.zeros(len(observed), dtype=bool)
    return ((observed >= band[0]) & (observed <= band[1])).any(1)


def line_bands(phot: Photometry, lines: tuple[float, ...] = STRONG_LINES_UM) -> np.ndarray:
    """(N, B) mask: the band's half-maximum passband holds one of ``lines`` at the source's redshift."""
    mask = np.zeros((len(phot), len(phot.bands)), dtype=bool)
    for j, b in enumerate(phot.bands):
        mask[:, j] = holds_strong_line(b.name, phot.z, lines)
    return mask


def _rest_widths_aa(phot: Photometry) -> np.ndarray:
    """(N, B) half-maximum widths of the bands in the rest frame, Angstrom (NaN for pivot-only bands)."""
    from .filters import passband_um

    bands = [passband_um(b.name) for b in phot.bands]
    widths = np.array([(pb[1] - pb[0]) * 1e4 if pb else np.nan for pb in bands])
    return widths[None, :] / (1 + phot.z[:, None])


def line_measures(phot: Photometry, mags: Magnitudes, rest: np.ndarray, logw: np.ndarray,
                  uv: LineFit) -> dict[str, np.ndarray]:
    """What [OIII]+H-beta could do to a source's rest-optical photometry, measured against its UV power law.

    - ``oiii_bands`` (N, B): bands holding [OIII]+H-beta;
    - ``excess_line_free_mag``: the largest rise above the UV power law among the detected rest-optical
      bands that hold no [OIII]+H-beta (NaN when there is none);
    - ``line_ew_needed_aa``: the rest EW([OIII]+H-beta) that would make the [OIII]+H-beta bands' rise alone,
      on a continuum that follows the UV power law (the largest over those bands; NaN when none is detected);
    - ``optical_slope_line_free``: beta of the rest optical (0.38-1 micron) from the bands without
      [OIII]+H-beta (NaN unless they span 0.1 dex in wavelength).
    """
    oiii = line_bands(phot, OIII_HB_UM)
    det, has_z = mags.detected, np.isfinite(phot.z)[:, None]
    in_opt = det & has_z & (rest >= OPT_WINDOW[0]) & (rest <= OPT_WINDOW[1])
    with np.errstate(invalid="ignore", over="ignore"):
        predicted = uv.slope[:, None] * logw + uv.intercept[:, None]
        rise = np.where(np.isfinite(predicted), predicted - mags.mag, np.nan)
        free = np.where(in_opt & ~oiii & np.isfinite(rise), rise, -np.inf).max(1)
        boosted = in_opt & oiii & np.isfinite(rise)
        ew = np.where(boosted, (10 ** (0.4 * np.clip(rise, 0, None)) - 1) * _rest_widths_aa(phot), -np.inf).max(1)
    # Without [OIII]+H-beta, over at least 0.1 dex of wavelength (a shorter lever arm turns 0.1 mag of noise
    # or of a line into a slope of +-2).
    clean = in_opt & ~oiii
    slope_free = fit_lines(logw, mags.mag, mags.err, clean)
    with np.errstate(invalid="ignore"):
        span = np.where(clean, logw, -np.inf).max(1) - np.where(clean, logw, np.inf).min(1)
    slope = np.where(span >= 0.1, slope_free.beta, np.nan)
    reading = emitter_reading(phot, rise, mags.err, in_opt & np.isfinite(rise), oiii)
    return {"oiii_bands": oiii, "excess_line_free_mag": np.where(np.isfinite(free), free, np.nan),
            "line_ew_needed_aa": np.where(np.isfinite(ew), ew, np.nan), "optical_slope_line_free": slope,
            **reading}


def emitter_reading(phot: Photometry, rise: np.ndarray, err: np.ndarray, use: np.ndarray,
                    oiii: np.ndarray) -> dict[str, np.ndarray]:
    """Can [OIII]+H-beta of the published emitters' EWs, on a continuum that follows the UV power law, make
    what the rest-optical bands show?

    Every detected rest-optical band enters: one holding the lines rises above the UV power law by
    c + 2.5 log10(1 + EW (1+z) sum_l share_l w(l)), one without them by c, where w is the band's response to a
    line (:func:`~astrorag.sed.filters.line_weight_per_um`, from its transmission curve), c the continuum's
    offset (Gaussian, :data:`EMITTER_CONTINUUM_SIGMA_MAG`, marginalised) and EW the rest EW with the emitters'
    log-normal distribution as its prior. The statistic is min over EW of the chi-square plus the prior's
    -2 ln term, referred to chi-square with one degree of freedom per band.

    A line adds the same EW to a medium and a broad band, so it raises the medium band more (F410M by 2.4x
    F444W's rise at z ~ 7); a continuum raises both alike. So where a catalog has a medium band beside a
    broad one, a red continuum that lines could mimic in one band is told apart (the F410M test of Daikuhara
    et al. 2025 and Williams et al. 2024, arXiv:2311.07483); with one line band and no line-free band the
    reading stays possible for any EW of the distribution's body and the p-value says how likely that EW is.

    Returns ``line_ew_fit_aa`` (the EW of the best emitter reading) and ``line_reading_p`` (its p-value),
    both NaN where no detected rest-optical band holds the lines.
    """
    n, nb = rise.shape
    one_plus_z = 1 + np.nan_to_num(phot.z, nan=0.0)
    gain = np.zeros((n, nb))  # rise factor per micron of rest EW
    for j, band in enumerate(phot.bands):
        for line, share in OIII_HB_SHARES.items():
            gain[:, j] += share * line_weight_per_um(band.name, line * one_plus_z) * one_plus_z
    gain = np.where(oiii, gain, 0.0)
    out_ew, out_p = np.full(n, np.nan), np.full(n, np.nan)
    rows = np.flatnonzero((use & (gain > 0)).any(1))
    if not len(rows):
        return {"line_ew_fit_aa": out_ew, "line_reading_p": out_p}
    cols = use[rows].any(0)  # only the bands some source uses
    u = use[np.ix_(rows, cols)]
    g = gain[np.ix_(rows, cols)] * 1e-4  # per A of rest EW
    r_obs = np.where(u, rise[np.ix_(rows, cols)], 0.0)
    var = np.where(u, np.nan_to_num(err[np.ix_(rows, cols)], nan=1.0) ** 2 + LINE_BAND_SYSTEMATIC_MAG ** 2, np.inf)
    inv = np.where(u, 1.0 / var, 0.0)
    s_c = EMITTER_CONTINUUM_SIGMA_MAG ** 2
    shrink = s_c / (1.0 + s_c * inv.sum(1))
    # the bands without the lines do not depend on the EW: their sums are taken once (most of a catalog's
    # bands; this keeps a million rows a matter of seconds)
    lined = (g > 0).any(0)
    free_sq = (r_obs[:, ~lined] ** 2 * inv[:, ~lined]).sum(1)
    free_lin = (r_obs[:, ~lined] * inv[:, ~lined]).sum(1)
    r_line, inv_line, g_line = r_obs[:, lined], inv[:, lined], g[:, lined]

    def statistic(ew: np.ndarray) -> np.ndarray:
        """chi-square with the continuum offset marginalised (Sherman-Morrison on diag + s_c 11^T), plus the
        EW prior's -2 ln term, for one EW per source."""
        r = r_line - 2.5 * np.log10(1.0 + ew[:, None] * g_line)
        chi2 = free_sq + (r ** 2 * inv_line).sum(1) - shrink * (free_lin + (r * inv_line).sum(1)) ** 2
        return chi2 + (np.log(ew / EW_OIII_HB_MEDIAN_AA) / EW_OIII_HB_SIGMA_LN) ** 2

    # a coarse grid (0.15 dex), then 0.01 dex steps about each source's best point
    best, best_ew = np.full(len(rows), np.inf), np.full(len(rows), np.nan)

    def search(candidates) -> None:
        nonlocal best, best_ew
        for ew in candidates:
            total = statistic(ew)
            better = total < best
            best, best_ew = np.where(better, total, best), np.where(better, ew, best_ew)

    search(np.full(len(rows), 10 ** log_ew) for log_ew in np.arange(1.0, 4.5, 0.15))
    centre = best_ew.copy()
    search(centre * 10 ** step for step in np.arange(-0.15, 0.151, 0.01))
    out_ew[rows] = best_ew
    out_p[rows] = chi2_sf(best, u.sum(1))
    return {"line_ew_fit_aa": out_ew, "line_reading_p": out_p}


def chi2_sf(x: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """P(chi-square >= x) for integer degrees of freedom, exact (the closed forms for even and odd dof).

    >>> chi2_sf(np.array([3.841, 5.991, 0.0]), np.array([1, 2, 3])).round(3).tolist()
    [0.05, 0.05, 1.0]
    """
    x = np.clip(np.asarray(x, dtype=float), 0.0, None)
    dof = np.asarray(dof, dtype=int)
    half = x / 2.0
    out = np.zeros_like(x)
    even = dof % 2 == 0
    # even: exp(-x/2) sum_{i < k/2} (x/2)^i / i!
    term = np.exp(-half)
    acc = np.zeros_like(x)
    for i in range(int(dof.max(initial=0)) // 2 + 1):
        acc = acc + np.where(i < dof // 2, term, 0.0)
        term = term * half / (i + 1)
    out = np.where(even, acc, out)
    # odd: erfc(sqrt(x/2)) + exp(-x/2) sum_{i=1}^{(k-1)/2} (x/2)^(i-1/2) / Gamma(i+1/2)
    erfc = np.frompyfunc(math.erfc, 1, 1)(np.sqrt(half)).astype(float)
    term = np.exp(-half) * np.sqrt(half) / math.gamma(1.5)
    acc = erfc
    for i in range(1, int(dof.max(initial=0)) // 2 + 1):
        acc = acc + np.where(i <= (dof - 1) // 2, term, 0.0)
        term = term * half / (i + 0.5)
    return np.where(dof <= 0, 1.0, np.where(even, out, acc))


def _fitted(phot: Photometry) -> np.ndarray:
    """(N, B) mask of the measurements a fit's residuals can use."""
    return np.isfinite(phot.flux) & np.isfinite(phot.err) & (phot.err > 0) & np.isfinite(phot.model) & ~phot.upper


def line_residuals(phot: Photometry, rest: np.ndarray | None = None) -> np.ndarray:
    """How far the bands holding strong lines are underpredicted beyond their neighbours: the mean
    (obs - model)/err over the line bands minus that over the line-free bands of the rest optical
    (0.3-1 micron). NaN where either set is empty. A line excess is local; a continuum deficit that happens to
    cover the line bands lifts their neighbours too and does not count."""
    usable = _fitted(phot)
    holds = line_bands(phot)
    rest = rest_wavelengths(phot) if rest is None else rest
    lines = usable & holds
    continuum = usable & ~holds & (rest >= 0.3) & (rest <= 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (phot.flux - phot.model) / phot.err
        on = np.where(lines, r, 0.0).sum(1) / lines.sum(1)
        off = np.where(continuum, r, 0.0).sum(1) / continuum.sum(1)
        return np.where(lines.any(1) & continuum.any(1), on - off, np.nan)


def residuals(phot: Photometry, rest: np.ndarray | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
    """Per-region mean of (obs - model)/err, bands per region, and the reduced chi-square (with a fit)."""
    n = len(phot)
    if phot.model is None:
        return {}, {}, None
    rest = rest_wavelengths(phot) if rest is None else rest
    usable = _fitted(phot)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(usable, (phot.flux - phot.model) / phot.err, 0.0)
    resid: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for region, (lo, hi) in REGIONS.items():
        inside = usable & (rest >= lo) & (rest < hi)
        counts[region] = inside.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            resid[region] = np.where(counts[region] > 0, np.where(inside, r, 0).sum(1) / counts[region], np.nan)
    k = usable.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2_red = np.where(k > 0, (r ** 2).sum(1) / k, np.nan)
    assert chi2_red.shape == (n,)
    return resid, counts, chi2_red
