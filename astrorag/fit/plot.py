"""The fit path's picture: photometry, the baseline and each kept model, and residuals per model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..sed.photometry import Photometry
from .loop import FitPath


def plot_path(path: FitPath, source: Photometry, out: str | Path) -> Path:
    """Write a PNG/SVG: flux (uJy) against rest wavelength with the models on top, (obs - model)/err below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = source.redshift
    lam = source.pivots / (1 + z)
    flux, err = source.flux[0], source.fit_err[0]
    order = np.argsort(lam)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 6.2), sharex=True, height_ratios=(3, 1.3))
    ok = np.isfinite(flux) & np.isfinite(err)
    top.errorbar(lam[ok], flux[ok], yerr=err[ok], fmt="o", color="black", ms=4, label="observed", zorder=5)
    kept = [(0, "baseline", path.baseline)] + [(n, rule, fit) for n, (rule, fit) in enumerate(path.kept, 1)]
    colours = plt.cm.viridis(np.linspace(0.1, 0.85, len(kept)))
    for (number, label, result), colour in zip(kept, colours):
        model = np.asarray(result.model_ujy, dtype=float)
        use = order[np.isfinite(model[order])]
        top.plot(lam[use], model[use], "s-", color=colour, ms=4, alpha=0.85,
                 label=f"step {number}: {label} (chi2 {result.chi2:.1f})")
        with np.errstate(invalid="ignore", divide="ignore"):
            resid = (flux - model) / err
        bottom.plot(lam[use], resid[use], "s-", color=colour, ms=4, alpha=0.85)
    top.set_xscale("log")
    positive = flux[ok & (flux > 0)]
    if positive.size:
        top.set_yscale("log")
        top.set_ylim(positive.min() / 3, positive.max() * 3)
    # plain numbers on the log axes ("0.2", not "2x10^-1"): the wavelength range is a decade or two
    from matplotlib.ticker import FormatStrFormatter

    for axis in (top.xaxis, bottom.xaxis):
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_formatter(FormatStrFormatter("%g"))
    top.tick_params(axis="x", which="minor", labelsize=7)
    bottom.tick_params(axis="x", which="minor", labelsize=7)
    top.set_ylabel("flux density (uJy)")
    top.set_title(f"{path.source_id} at z = {z:g}: {path.fitter} fits, kept by {path.criterion}")
    top.legend(fontsize=8, loc="upper left")
    bottom.axhline(0, color="grey", lw=0.8)
    for level in (-2, 2):
        bottom.axhline(level, color="grey", lw=0.6, ls=":")
    bottom.set_xlabel("rest-frame wavelength (micron)")
    bottom.set_ylabel("(obs - model) / err")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
