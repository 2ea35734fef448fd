"""Amortized posteriors for a batch of sources: draws, intervals, a posterior-predictive goodness of fit,
an out-of-distribution score and the ``unexplained`` flag."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..fit.likelihood import REJECT_P
from ..fit.spec import age_cap_myr
from ..sed.diagnostics import chi2_sf
from .model import Artifact, emulator_inputs, features, need_sbi
from .simulator import DERIVED, PARAMETERS, log_sfr

#: Sources per batch (1,000 draws each): bounds the memory at about 100 MB.
BATCH = 1000
#: A band whose median standardised residual over the draws is beyond this fails (named in the output).
FAILING_BAND_SIGMA = 3.0
#: A posterior with at least this share of its draws outside the prior lies outside what the baseline allows.
OUTSIDE_PRIOR = 0.99
#: The columns written per source for each parameter.
QUANTILES = {"p16": 16.0, "p50": 50.0, "p84": 84.0}


def _age_caps(z: np.ndarray) -> np.ndarray:
    return np.array([age_cap_myr(float(zz)) / 1e3 if math.isfinite(zz) else np.inf for zz in z])


def _inside(theta: np.ndarray, caps: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(draws, n): the draws inside the prior's support (the flow leaks a little outside it)."""
    inside = np.all((theta >= lo) & (theta <= hi), axis=-1)
    return inside & (theta[..., PARAMETERS.index("age_gyr")] <= caps[None, :])


def _clip_into(theta: np.ndarray, caps: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The draws moved to the nearest point of the support: what the baseline allows closest to them."""
    out = np.clip(theta, lo, hi)
    j = PARAMETERS.index("age_gyr")
    out[..., j] = np.minimum(out[..., j], caps[None, :])
    return out


def posteriors(artifact: Artifact, flux: np.ndarray, err: np.ndarray, present: np.ndarray, z: np.ndarray,
               draws: int = 1000, seed: int = 0, with_reference: bool = True) -> dict[str, np.ndarray]:
    """Per source (rows of ``flux``/``err``/``present`` in the artifact's band order, uJy):

    - ``<parameter>_p16/p50/p84`` for the baseline's parameters and ``log_sfr``;
    - ``ppc_pvalue``: the posterior-predictive p-value of chi-square, the mean over draws of
      P(chi2_k >= chi2(observed | draw)), k the bands present, errors with the fits' floor and the emulator's
      own error added;
    - ``best_chi2_per_band``: the smallest chi-square over the draws per band;
    - ``ood_score``: the share of held-out simulations that fit better than this source (1: beyond all);
    - ``unexplained``: ``ppc_pvalue`` below the fits' own rejection level (0.01), or 99 % of the draws
      outside the prior (the network extrapolating from a source unlike every simulation);
    - ``failing_bands``: the bands whose median standardised residual is beyond 3 sigma;
    - ``leakage``: the share of draws outside the prior (dropped).
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
        raw = raw.astype(float)
        caps = _age_caps(z[rows])
        inside = _inside(raw, caps, lo, hi)                                   # (draws, n)
        out["leakage"][rows] = 1.0 - inside.mean(0)
        theta = np.where(inside[..., None], raw, np.nan)
        derived = np.where(inside, log_sfr(np.nan_to_num(theta, nan=1.0).reshape(-1, len(PARAMETERS))
                                           ).reshape(draws, len(rows)), np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a source whose draws all leaked: NaN, said by leakage
            for j, name in enumerate(names):
                values = theta[..., j] if j < len(PARAMETERS) else derived
                for q, level in QUANTILES.items():
                    out[f"{name}_{q}"][rows] = np.nanpercentile(values, level, axis=0)
        # the goodness of fit over the draws inside the prior; where none is (the network extrapolating from a
        # source unlike any simulation), over the draws moved into it: the nearest the baseline allows
        none_inside = ~inside.any(0)
        gof = _clip_into(raw, caps, lo, hi)   # the draws inside are unchanged; the others count only then
        valid = inside | none_inside[None, :]
        flat = gof.reshape(-1, len(PARAMETERS))
        zz = np.broadcast_to(z[rows], (draws, len(rows))).reshape(-1)
        with torch.no_grad():
            mags = artifact.emulator(torch.as_tensor(emulator_inputs(flat, zz), dtype=torch.float32)).numpy()
        model = (10 ** ((23.9 - mags) / 2.5)).reshape(draws, len(rows), -1)
        sigma = np.sqrt(err[rows][None] ** 2 + (noise.error_floor * model) ** 2 + (emu_frac * model) ** 2)
        resid = np.where(present[rows][None], (flux[rows][None] - model) / sigma, 0.0)
        chi2 = (resid ** 2).sum(-1)
        k = present[rows].sum(1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = chi2_sf(chi2.reshape(-1), np.broadcast_to(k, chi2.shape).reshape(-1)).reshape(chi2.shape)
            out["ppc_pvalue"][rows] = np.where(valid.any(0), np.nanmean(np.where(valid, p, np.nan), 0), np.nan)
            out["best_chi2_per_band"][rows] = np.where(valid.any(0), np.nanmin(np.where(valid, chi2, np.nan), 0) / k,
                                                       np.nan)
            median_resid = np.nanmedian(np.where(valid[..., None], resid, np.nan), 0)
        bad = present[rows] & (np.abs(median_resid) > FAILING_BAND_SIGMA)
        failing[rows] = [",".join(b for b, hit in zip(artifact.bands, row) if hit) for row in bad]
    # unexplained: the goodness of fit rejects every allowed model, or the posterior lies outside the prior
    rejected = (out["ppc_pvalue"] < REJECT_P) | (out["leakage"] >= OUTSIDE_PRIOR)
    out["unexplained"] = np.where(np.isfinite(out["ppc_pvalue"]), rejected.astype(float), np.nan)
    out["failing_bands"] = failing
    if with_reference and "ood_reference" in artifact.meta:
        reference = np.asarray(artifact.meta["ood_reference"])
        out["ood_score"] = np.where(np.isfinite(out["best_chi2_per_band"]),
                                    np.interp(out["best_chi2_per_band"], reference, np.linspace(0, 1, len(reference))),
                                    np.nan)
    return out
