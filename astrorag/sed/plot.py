"""The advisor's picture: photometry with errors and upper limits, the model, residual regions, slope fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..graph.regions import REGIONS
from .diagnostics import BALMER_LIMIT_UM
from .magnitudes import LIMIT_SIGMA
from .photometry import DETECTION_SNR
from .types import Advice
from .units import MAG_PER_LN, ujy_to_ab

REGION_COLOURS = {"uv": "#8172B3", "optical": "#55A868", "nir": "#DD8452", "mir": "#C44E52", "fir": "#937860"}


def _nice_ticks(axis, limits) -> None:
    """Plain-number ticks (0.1, 0.2, 0.5, 1, 2 ...) on a log axis instead of 4x10^-1."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    lo, hi = sorted(limits)
    ticks = [m * 10.0 ** e for e in range(-2, 4) for m in (1, 2, 3, 5) if lo <= m * 10.0 ** e <= hi]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def plot_advice(advice: Advice, out: str | Path) -> Path:
    """Write a PNG/SVG: AB magnitude against rest wavelength, observed wavelength on the top axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sed = advice.sed
    z = sed.redshift if np.isfinite(sed.redshift) else 0.0
    lam_obs = sed.pivots
    lam = lam_obs / (1 + z)
    flux, err, upper = sed.flux[0].astype(float), sed.err[0].astype(float), sed.upper[0].astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = ujy_to_ab(flux)
        mag_err = MAG_PER_LN * err / flux
        detected = np.isfinite(mag) & np.isfinite(mag_err) & (flux / err >= DETECTION_SNR) & ~upper
        limit_flux = np.where(upper, flux, np.where(np.isfinite(err), np.maximum(flux, 0) + LIMIT_SIGMA * err,
                                                    np.nan))
        limit_mag = ujy_to_ab(limit_flux)
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    d = advice.diagnostics
    for region, (lo, hi) in REGIONS.items():
        resid = d.get(f"resid_{region}")
        if resid is not None and abs(resid) >= 2:
            ax.axvspan(lo, hi, color=REGION_COLOURS[region], alpha=0.12)
            ax.text(np.sqrt(lo * min(hi, lam.max() * 1.5 if lam.size else hi)), 0.02,
                    f"{region}: {'model too bright' if resid < 0 else 'model too faint'} ({resid:+.1f} sigma)",
                    transform=ax.get_xaxis_transform(), fontsize=8, color=REGION_COLOURS[region], ha="center")
    ax.axvline(BALMER_LIMIT_UM, color="grey", ls=":", lw=1)
    ax.text(BALMER_LIMIT_UM, 0.97, " Balmer limit", transform=ax.get_xaxis_transform(), fontsize=8, color="grey",
            va="top")
    ax.errorbar(lam[detected], mag[detected], yerr=mag_err[detected], fmt="o", color="k", ms=5, capsize=2,
                label="photometry")
    nondet = ~detected & np.isfinite(limit_mag)
    ax.plot(lam[nondet], limit_mag[nondet], "v", color="0.5", ms=7, label="2-sigma upper limit")
    if sed.model is not None:
        model = sed.model[0].astype(float)
        model_mag = ujy_to_ab(model)
        ok = np.isfinite(model_mag)
        order = np.argsort(lam[ok])
        ax.plot(lam[ok][order], model_mag[ok][order], "s--", color="#4C72B0", ms=5, mfc="none", label="model")
    # The very lines the slopes came from (kept by the diagnostics), drawn over the bands they used.
    for name, key, colour in (("uv", "beta_uv", "#8172B3"), ("optical", "beta_opt", "#C44E52")):
        fit, beta = advice.fits.get(name), d.get(key)
        if fit is None or beta is None:
            continue
        lo, hi = fit["window_um"]
        use = detected & (lam >= lo) & (lam <= hi)
        if use.sum() < 2:
            continue
        grid = np.linspace(lam[use].min() * 0.9, lam[use].max() * 1.1, 20)
        ax.plot(grid, fit["slope"] * np.log10(grid) + fit["intercept"], color=colour, lw=2, alpha=0.8,
                label=f"{'UV' if name == 'uv' else 'optical'} slope beta = {beta:.2f}")
    ax.set_xscale("log")
    _nice_ticks(ax.xaxis, ax.get_xlim())
    ax.invert_yaxis()
    ax.set_xlabel("rest-frame wavelength [micron]")
    ax.set_ylabel("AB magnitude")
    lrd = {True: "LRD", False: "not LRD", None: "LRD: n/a"}[advice.is_lrd]
    ax.set_title(f"{advice.source_id}  z = {z:.2f}  ({lrd})", fontsize=11)
    top = ax.secondary_xaxis("top", functions=(lambda x: x * (1 + z), lambda x: x / (1 + z)))
    top.set_xlabel("observed wavelength [micron]")
    _nice_ticks(top.xaxis, tuple(v * (1 + z) for v in ax.get_xlim()))
    ax.legend(fontsize=8, loc="best", frameon=False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
