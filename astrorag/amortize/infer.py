"""Amortized posteriors for a batch of sources: draws, intervals, a posterior-predictive goodness of fit,
an out-of-distribution score and the ``unexplained`` flag."""

from __future__ import annotations

import math

import numpy as np

from ..fit.likelihood import REJECT_P
from ..sed.diagnostics import chi2_sf
from .model import Artifact, emulator_inputs, features, need_sbi
from .simulator import DERIVED, PARAMETERS, from_unbounded, log_sfr

#: Sources per batch (1,000 draws each): bounds the memory at about 100 MB.
BATCH = 1000
#: A band whose median standardised residual over the draws is beyond this fails (named in the output).
FAILING_BAND_SIGMA = 3.0
#: The best chi-square is taken over this many draws, at inference as in the reference (train.py).
REFERENCE_DRAWS = 200
#: The columns written per source for each parameter.
QUANTILES = {"p16": 16.0, "p50": 50.0, "p84": 84.0}


def posteriors(artifact: Artifact, flux: np.ndarray, err: np.ndarray, present: np.ndarray, z: np.ndarray,
               draws: int = 1000, seed: int = 0, with_reference: bool = True) -> dict[str, np.ndarray]:
    """Per source (rows of ``flux``/``err``/``present`` in the artifact's band order, uJy):

    - ``<parameter>_p16/p50/p84`` for the baseline's parameters and ``log_sfr``;
    - ``ppc_pvalue``: the posterior-predictive p-value of chi-square, the mean over draws of
      P(chi2_k >= chi2(observed | draw)), k the bands present, errors with the fits' floor and the emulator's
      own error added;
    - ``best_chi2_per_band``: the smallest chi-square over the first 200 draws, per band;
    - ``ood_score``: the share of held-out simulations that fit better than this source (1: beyond all);
    - ``unexplained``: the best of 200 draws fits worse than 99 % of the simulator's own held-out sources
      (``ood_score`` >= 0.99; a 1 % false-alarm rate by construction); without that reference,
      ``ppc_pvalue`` < 0.01. The posterior-predictive p-value is reported, not used for the flag: on 2,000
      fresh simulations it fell below 0.01 for 8.5 % of them (eval/README.md), the emulator's and the
      posterior's own errors inflating the chi-square;
    - ``failing_bands``: the bands whose mean standardised residual over the draws is beyond 3 sigma;
    - ``leakage``: the share of draws that are not finite (0 unless the network fails: draws are mapped
      into the prior by construction, :func:`~astrorag.amortize.simulator.from_unbounded`).
    """
    torch = need_sbi()
    n = len(flux)
    z = np.asarray(z, dtype=float)
    present = np.asarray(present, dtype=bool) & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    lo, hi = (np.asarray(v, dtype=float) for v in artifact.meta["support"])
    noise = artifact.noise
    emu_frac = np.asarray(artifact.meta["emulator_rms_mag"]) * math.log(10) / 2.5
    names = list(PARAMETERS) + list(DERIVED)
    out: dict[str, np.ndarray] = {f"{p}_{q}": np.full(n, np.nan) for p in names for q in QUANTILES}
    out.update(ppc_pvalue=np.full(n, np.nan), best_chi2_per_band=np.full(n, np.nan), leakage=np.full(n, np.nan),
               n_bands=present.sum(1))
    failing = np.empty(n, dtype=object)
    failing[:] = ""
    torch.manual_seed(seed)
    usable = np.isfinite(z) & (present.sum(1) >= 3)
    rows_all = np.flatnonzero(usable)
    for start in range(0, len(rows_all), BATCH):
        rows = rows_all[start:start + BATCH]
        x = features(flux[rows], err[rows], present[rows], z[rows])
        with torch.no_grad():
            raw = artifact.posterior.sample((draws,), condition=torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
        theta = from_unbounded(raw.astype(float), z[rows], lo, hi)            # (draws, n, P), inside the prior
        finite = np.isfinite(theta).all(-1)
        out["leakage"][rows] = 1.0 - finite.mean(0)
        derived = log_sfr(theta.reshape(-1, len(PARAMETERS))).reshape(draws, len(rows))
        for j, name in enumerate(names):
            values = theta[..., j] if j < len(PARAMETERS) else derived
            levels = np.percentile(values, list(QUANTILES.values()), axis=0)
            for q, level_values in zip(QUANTILES, levels):
                out[f"{name}_{q}"][rows] = level_values
        # the goodness of fit over the draws, through the emulator
        flat = theta.reshape(-1, len(PARAMETERS))
        zz = np.broadcast_to(z[rows], (draws, len(rows))).reshape(-1)
        with torch.no_grad():
            mags = artifact.emulator(torch.as_tensor(emulator_inputs(flat, zz), dtype=torch.float32)).numpy()
        model = (10 ** ((23.9 - mags) / 2.5)).reshape(draws, len(rows), -1)
        sigma = np.sqrt(err[rows][None] ** 2 + (noise.error_floor * model) ** 2 + (emu_frac * model) ** 2)
        resid = np.where(present[rows][None], (flux[rows][None] - model) / sigma, 0.0)
        chi2 = (resid ** 2).sum(-1)
        k = present[rows].sum(1)
        p = chi2_sf(chi2.reshape(-1), np.broadcast_to(k, chi2.shape).reshape(-1)).reshape(chi2.shape)
        out["ppc_pvalue"][rows] = p.mean(0)
        # the same number of draws as the reference was built with, so that the two minima compare
        out["best_chi2_per_band"][rows] = chi2[:REFERENCE_DRAWS].min(0) / k
        bad = present[rows] & (np.abs(resid.mean(0)) > FAILING_BAND_SIGMA)
        failing[rows] = [",".join(b for b, hit in zip(artifact.bands, row) if hit) for row in bad]
    out["failing_bands"] = failing
    judged = np.isfinite(out["ppc_pvalue"])
    if with_reference and "ood_reference" in artifact.meta:
        reference = np.asarray(artifact.meta["ood_reference"])
        out["ood_score"] = np.where(judged, np.interp(out["best_chi2_per_band"], reference,
                                                      np.linspace(0, 1, len(reference))), np.nan)
        # beyond 99 % of the simulator's own held-out sources: a 1 % false-alarm rate by construction, whatever
        # the emulator's errors and the posterior's shape do to the chi-square's nominal distribution
        out["unexplained"] = np.where(judged, (out["ood_score"] >= 1 - REJECT_P).astype(float), np.nan)
    else:
        out["unexplained"] = np.where(judged, (out["ppc_pvalue"] < REJECT_P).astype(float), np.nan)
    return out
