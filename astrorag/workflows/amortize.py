"""Amortized posteriors: train a model for a band set, find one, measure its calibration."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..settings import Settings

#: Below the cache folder: one folder per trained model, named by its configuration's hash.
FOLDER = "amortized"


def models_dir(settings: Settings) -> Path:
    return settings.storage.cache_dir / FOLDER


def parse_bands(text: str) -> tuple[str, ...]:
    """``"F090W, f115w,jwst.nircam.F444W"`` -> ``("f090w", "f115w", "f444w")``; an unknown band is an error
    that lists close names.

    >>> parse_bands("F090W, f115w,jwst.nircam.F444W")
    ('f090w', 'f115w', 'f444w')
    """
    from ..sed.filters import get_filter

    bands = tuple(get_filter(b.strip()).short for b in text.split(",") if b.strip())
    if len(set(bands)) != len(bands):
        raise InputError(f"--bands {text!r} names a band twice")
    return bands


def train_model(settings: Settings, bands: tuple[str, ...], n_sims: int, seed: int = 0,
                z_range: tuple[float, float] = (0.5, 10.0), noise_from: str | Path | None = None,
                workers: int = 1, quick: bool = False, progress=None):
    """Simulate, train and save an amortized model; returns the artifact (its ``path`` set).

    ``noise_from``: a catalog whose per-band errors the simulations draw (else a 5-sigma depth of 29 AB).
    ``quick``: few epochs, for tests and smoke runs (the artifact says so in its configuration).
    """
    from ..amortize.simulator import NoiseModel
    from ..amortize.train import TrainOptions, train

    noise = None
    if noise_from is not None:
        from ..sed.photometry import read_photometry

        phot = read_photometry(noise_from)
        lookup = {b.short: j for j, b in enumerate(phot.bands)}
        missing = [b for b in bands if b not in lookup]
        if missing:
            raise InputError(f"--noise-from {noise_from} has no {', '.join(missing)}: name a catalog with every band "
                             "of --bands, or leave --noise-from out (a 5-sigma depth of 29 AB is assumed)")
        noise = NoiseModel.from_catalog(bands, np.column_stack([phot.err[:, lookup[b]] for b in bands]))
    options = TrainOptions(bands, n_sims=n_sims, seed=seed, z_range=z_range,
                           **({"max_epochs": 20, "emulator_epochs": 300} if quick else {}))
    artifact = train(options, noise=noise, workers=workers, progress=progress)
    artifact.save(models_dir(settings))
    return artifact


def find_model(settings: Settings, name: str) -> Path:
    """A model folder from a path or a key (or a unique prefix of one) under the cache's models."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    root = models_dir(settings)
    matches = sorted(p for p in root.glob(f"{name}*") if p.is_dir()) if root.is_dir() and name else []
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.name[:12] for p in sorted(root.iterdir())) if root.is_dir() else ""
    if not matches:
        raise InputError(f"no amortized model {name!r}: give a folder or a key from `astrorag amortize list`"
                         + (f" (known: {known})" if known else "; train one with `astrorag amortize train --bands ...`"))
    raise InputError(f"{name!r} matches {len(matches)} models ({', '.join(p.name[:12] for p in matches)}): give more "
                     "of the key")


def list_models(settings: Settings) -> list[dict]:
    """Every trained model in the cache: key, bands, simulations, redshift range, when."""
    root = models_dir(settings)
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        meta_file = folder / "meta.json"
        if not meta_file.is_file():
            continue
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError:
            continue
        out.append({"key": folder.name, "bands": meta.get("bands"), "n_sims": meta["config"].get("n_sims"),
                    "z_range": meta["config"].get("z_range"), "path": str(folder),
                    "trained": time.strftime("%Y-%m-%d %H:%M", time.localtime(meta_file.stat().st_mtime))})
    return out


def catalog_extra(settings: Settings, name: str):
    """The per-block column function ``advise-catalog --posteriors NAME`` hands to the workers."""
    from ..amortize.columns import catalog_columns
    from ..amortize.model import Artifact

    folder = find_model(settings, name)
    Artifact.load(folder)  # fail here, once, rather than in every block
    return partial(catalog_columns, str(folder))


@dataclass
class Calibration:
    """Coverage of the amortized posterior on fresh simulations (never seen in training)."""

    key: str
    n: int
    seed: int
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)  # parameter -> {"68": share, "95": share}
    coverage_ci95: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    unexplained_share: float = 0.0     # false alarms: the simulator's own sources flagged unexplained
    ppc_pvalue_quantiles: list[float] = field(default_factory=list)
    missing_bands: dict = field(default_factory=dict)
    noise_scaled: dict = field(default_factory=dict)
    ms_per_source: float = 0.0

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _coverage(truth: np.ndarray, draws: np.ndarray, level: float) -> np.ndarray:
    """Per parameter, whether the truth lies in the central ``level`` interval of the draws."""
    lo = np.nanpercentile(draws, 50 - level / 2, axis=0)
    hi = np.nanpercentile(draws, 50 + level / 2, axis=0)
    return (truth >= lo) & (truth <= hi)


def calibrate_model(settings: Settings, name: str, n: int = 2000, seed: int = 12345, draws: int = 1000,
                    workers: int = 1) -> Calibration:
    """Simulation-based calibration on ``n`` fresh simulations: the share of true values inside the 68 % and
    95 % intervals per parameter (nominal 0.68 and 0.95), the share flagged ``unexplained`` (false alarms
    at a 1 % test), the same with 30 % of bands removed and with errors 2x larger than the noise model."""
    import warnings

    from ..amortize.infer import posteriors
    from ..amortize.model import Artifact, features, need_sbi
    from ..amortize.simulator import PARAMETERS, from_unbounded, simulate
    from ..evaluation.report import wilson_interval

    torch = need_sbi()
    artifact = Artifact.load(find_model(settings, name))
    lo, hi = (np.asarray(v) for v in artifact.meta["support"])
    sims = simulate(artifact.bands, artifact.noise, tuple(artifact.meta["config"]["z_range"]), n, seed,
                    workers=workers)
    report = Calibration(artifact.key, n, seed)
    torch.manual_seed(seed)
    x = features(sims["flux"], sims["err"], sims["present"], sims["z"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = artifact.posterior.sample((draws,), condition=torch.as_tensor(x, dtype=torch.float32))
    theta = from_unbounded(raw.detach().numpy().astype(float), sims["z"], lo, hi)
    for j, name_j in enumerate(PARAMETERS):
        report.coverage[name_j], report.coverage_ci95[name_j] = {}, {}
        for level in (68, 95):
            inside = _coverage(sims["theta"][:, j], theta[..., j], level)
            k = int(inside.sum())
            report.coverage[name_j][str(level)] = round(k / n, 4)
            report.coverage_ci95[name_j][str(level)] = [round(v, 4) for v in wilson_interval(k, n)]
    t0 = time.perf_counter()
    base = posteriors(artifact, sims["flux"], sims["err"], sims["present"], sims["z"], draws=draws, seed=seed)
    report.ms_per_source = round((time.perf_counter() - t0) / n * 1e3, 2)
    report.unexplained_share = round(float(np.nanmean(base["unexplained"])), 4)
    report.ppc_pvalue_quantiles = np.nanquantile(base["ppc_pvalue"], [0.01, 0.05, 0.25, 0.5, 0.75, 0.95]).round(4).tolist()
    rng = np.random.default_rng(seed + 1)
    fewer = sims["present"] & (rng.uniform(size=sims["present"].shape) >= 0.3)
    gaps = posteriors(artifact, sims["flux"], sims["err"], fewer, sims["z"], draws=draws, seed=seed)
    report.missing_bands = {"removed_share": 0.3, "unexplained_share": round(float(np.nanmean(gaps["unexplained"])), 4),
                            "median_width_log_mass": _width(gaps, "log_mass_formed"),
                            "median_width_log_mass_all_bands": _width(base, "log_mass_formed")}
    noisy_flux = sims["model"] + (sims["flux"] - sims["model"]) * 2.0
    louder = posteriors(artifact, noisy_flux, sims["err"], sims["present"], sims["z"], draws=draws, seed=seed)
    report.noise_scaled = {"noise_factor_unstated": 2.0,
                           "unexplained_share": round(float(np.nanmean(louder["unexplained"])), 4),
                           "ood_score_median": round(float(np.nanmedian(louder.get("ood_score", np.nan))), 3)}
    return report


def _width(result: dict, name: str) -> float:
    return round(float(np.nanmedian(result[f"{name}_p84"] - result[f"{name}_p16"])), 3)


#: The bagpipes fit's names for the amortized model's parameters (massformed is log10 Msun in both).
NAUTILUS_NAMES = {"log_mass_formed": "delayed:massformed", "age_gyr": "delayed:age", "tau_gyr": "delayed:tau",
                  "metallicity": "delayed:metallicity", "av": "dust:Av"}


def compare_with_nautilus(settings: Settings, name: str, catalog: str | Path, n: int = 20, seed: int = 0,
                          log=None) -> dict:
    """The amortized posterior against nested sampling (the bagpipes baseline fit, nautilus, the fit's own
    sampler settings) on ``n`` real sources of ``catalog`` drawn with ``seed`` among those with a redshift in
    the model's range and at least five of its bands: per parameter, the share of amortized medians inside
    the nautilus 68 % interval, and the median difference of medians in units of the nautilus half-width.
    Both fits see the same bands, errors and error floor."""
    from ..amortize.infer import posteriors
    from ..amortize.model import Artifact
    from ..amortize.simulator import PARAMETERS
    from ..fit import get_fitter
    from ..fit.base import FitError
    from ..fit.spec import baseline
    from ..sed.photometry import read_photometry

    artifact = Artifact.load(find_model(settings, name))
    phot = read_photometry(catalog)
    columns = artifact.check_bands(tuple(b.short for b in phot.bands))
    flux, err = phot.flux[:, columns].astype(float), phot.err[:, columns].astype(float)
    present = ~phot.upper[:, columns] & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    z_lo, z_hi = artifact.meta["config"]["z_range"]
    eligible = np.flatnonzero(np.isfinite(phot.z) & (phot.z >= z_lo) & (phot.z <= z_hi) & (present.sum(1) >= 5))
    if len(eligible) < n:
        raise InputError(f"{catalog}: {len(eligible)} sources have a redshift in {z_lo:g}-{z_hi:g} and five of the "
                         f"model's bands; asked for {n}")
    chosen = np.sort(np.random.default_rng(seed).choice(eligible, n, replace=False))
    amortized = posteriors(artifact, flux[chosen], err[chosen], present[chosen], phot.z[chosen], seed=seed)
    fit = settings.fit
    fitter = get_fitter("bagpipes", fit.sampler)
    rows, cpu = [], 0.0
    # the nested-sampling fit sees the model's bands only, as the amortized one does
    same_bands = replace(phot, bands=[phot.bands[j] for j in columns], flux=phot.flux[:, columns],
                         err=phot.err[:, columns], upper=phot.upper[:, columns], model=None, extras={})
    for k, i in enumerate(chosen):
        source = same_bands.source(int(i), error_floor=fit.error_floor)
        try:
            result = fitter.fit(source, baseline(float(phot.z[i])))
        except FitError as exc:
            rows.append({"id": str(phot.ids[i]), "error": str(exc)})
            continue
        cpu += result.seconds
        row = {"id": str(phot.ids[i]), "z": float(phot.z[i]), "chi2_red": result.chi2_red,
               "nautilus_rejected": bool(result.rejected), "ppc_pvalue": float(amortized["ppc_pvalue"][k])}
        for p in PARAMETERS:
            q = result.posterior[NAUTILUS_NAMES[p]]
            row[p] = {"nautilus": [q["p16"], q["p50"], q["p84"]],
                      "amortized": [float(amortized[f"{p}_{s}"][k]) for s in ("p16", "p50", "p84")]}
        rows.append(row)
        if log:
            log(f"compare: {k + 1}/{n} {phot.ids[i]} (z {phot.z[i]:.2f}) fitted in {result.seconds:.0f} CPU s")
    done = [r for r in rows if "error" not in r]
    summary = {}
    for p in PARAMETERS:
        inside = [r[p]["nautilus"][0] <= r[p]["amortized"][1] <= r[p]["nautilus"][2] for r in done]
        offsets = [(r[p]["amortized"][1] - r[p]["nautilus"][1]) / max((r[p]["nautilus"][2] - r[p]["nautilus"][0]) / 2,
                                                                       1e-9) for r in done]
        summary[p] = {"median_inside_nautilus_68": round(float(np.mean(inside)), 3) if done else None,
                      "median_offset_in_half_widths": round(float(np.median(offsets)), 3) if done else None}
    return {"model": artifact.key, "catalog": str(catalog), "n": n, "seed": seed, "fitted": len(done),
            "nautilus_cpu_s_per_source": round(cpu / max(len(done), 1), 1),
            "sampler": {"n_live": fit.sampler.n_live, "n_eff": fit.sampler.n_eff, "seed": fit.sampler.seed,
                        "max_likelihood_calls": fit.sampler.max_likelihood_calls}, "per_parameter": summary,
            "rejected_by_nautilus": sum(r["nautilus_rejected"] for r in done),
            "unexplained_amortized": int(sum(r["ppc_pvalue"] < 0.01 for r in done)), "sources": rows}
