"""Deterministic SED diagnostics, vectorised over sources: slopes, V shape, Balmer break, mid-IR, residuals.

All slopes come from weighted least-squares power-law fits to AB magnitudes in rest-frame windows,
m = -2.5 (beta + 2) log10(lambda) + c (f_lambda ~ lambda^beta), the form Kocevski et al. 2024
(arXiv:2404.03576) use; the mid-IR slope is alpha in f_nu ~ lambda^alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .magnitudes import Magnitudes
from .photometry import Photometry
from ..graph.regions import REGIONS

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
    oiii_bands: np.ndarray | None = None  # (N, B)
    band_names: tuple[str, ...] = ()

    def line_boosted_bands(self, i: int) -> list[str]:
        """The bands of source ``i`` that hold [OIII]+H-beta at its redshift."""
        if self.oiii_bands is None:
            return []
        return [name for name, hit in zip(self.band_names, self.oiii_bands[i]) if hit]

    #: the scalar diagnostics, in display order (catalog columns and the advice's ``diagnostics``)
    SCALARS = ("beta_uv", "n_uv", "beta_opt", "n_opt", "turnover_um", "balmer_break_mag", "red_excess_mag",
               "mir_slope", "n_mir", "optical_slope_line_free", "excess_line_free_mag", "line_ew_needed_aa")

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

    widths = np.array([(lambda pb: (pb[1] - pb[0]) * 1e4 if pb else np.nan)(passband_um(b.name))
                       for b in phot.bands])
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
    return {"oiii_bands": oiii, "excess_line_free_mag": np.where(np.isfinite(free), free, np.nan),
            "line_ew_needed_aa": np.where(np.isfinite(ew), ew, np.nan), "optical_slope_line_free": slope}


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
