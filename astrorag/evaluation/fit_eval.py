"""``eval fit``: does the advised change recover a model that was hidden from the baseline fit?

Injection-recovery: photometry is generated with bagpipes itself from a known model that the baseline
cannot make (a reddened AGN power law, A_V far above the baseline prior, a recent burst, strong nebular
lines), with noise at JWST survey depth. Each source gets the baseline fit; the advisor ranks actions from
the fit's symptoms (residuals by region and in the line bands, the posterior against its prior), exactly as
the loop does. An action *recovers the truth* when it is the right kind of change for the injected cause (it
adds the missing component, or moves the limiting prior toward the injected value) and the refit with it
passes the loop's model-comparison threshold over the baseline.

- ``top1_recovery_rate``: the advisor's first testable action recovers the truth;
- ``random_action_recovery_rate``: an action drawn at random (seeded) from the same action set (every
  testable action of the rule graph) recovers the truth; both are refitted, so both face the same sampler noise;
- ``paired_sign_test``: sources where only the advised action recovered the truth against sources where only the
  random one did, and the two-sided exact sign-test p-value of that split (both are tried on the same sources);
- ``random_action_right_share``: the share of the action set that is the right kind of change (the chance
  level of the first criterion alone, no refit needed);
- ``seconds_per_fit``: wall seconds per bagpipes fit at the chosen live-point count, on this CPU.
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fit import get_fitter
from ..fit.base import SourcePhotometry
from ..fit.loop import MIN_DELTA_LN_Z, candidate_actions, fit_or_reason, fit_symptoms, applicable_change
from ..fit.spec import ModelSpec, apply_action, baseline
from ..graph.model import load_graph
from ..sed.filters import curve_file, get_filter
from ..sed.photometry import Photometry
from ..hardware import usable_cpus
from ..settings import Settings
from .report import finish_report, markdown_table, paired_sign_test, report_dir, wilson_interval, write_jsonl

#: JWST/HST bands of a deep extragalactic field (JADES/CEERS-like), all with shipped curves.
BANDS = ("f435w", "f606w", "f775w", "f090w", "f115w", "f150w", "f200w", "f277w", "f335m", "f356w", "f410m",
         "f444w")
#: 5-sigma point-source depth in AB mag (JADES-like medium depth; the HST bands ~1 mag shallower).
DEPTH_AB = {b: (28.0 if b in ("f435w", "f606w", "f775w") else 29.0) for b in BANDS}
REDSHIFT = 5.0

_BASE_STARS = {"age": 0.3, "tau": 0.3, "massformed": 9.3, "metallicity": 0.4}


def _injected(kind: str) -> dict:
    """bagpipes model components for one injected truth (fixed values)."""
    stars = dict(_BASE_STARS)
    comps: dict = {"redshift": REDSHIFT, "delayed": stars, "nebular": {"logU": -3.0},
                   "dust": {"type": "Calzetti", "Av": 0.3, "eta": 2.27}}
    if kind == "hidden_agn":
        comps["agn"] = {"alphalam": -1.5, "betalam": -1.5, "f5100A": 4e-19, "sigma": 2000.0, "hanorm": 0.0}
        comps["agn_dust"] = {"type": "SMC", "Av": 1.2}
    elif kind == "high_av":
        comps["delayed"] = dict(stars, massformed=10.0)
        comps["dust"] = {"type": "Calzetti", "Av": 2.2, "eta": 2.27}  # E_BV_lines = 2.2 / (4.05 x 0.44) = 1.23
    elif kind == "recent_burst":
        comps["delayed"] = dict(stars, age=0.9, tau=0.1, massformed=9.8)
        comps["burst"] = {"age": 0.02, "massformed": 8.9, "metallicity": 0.4}
    elif kind == "strong_lines":
        comps["delayed"] = dict(stars, age=0.05, tau=0.5, massformed=8.8)
        comps["nebular"] = {"logU": -1.5}
    else:
        raise InputError(f"unknown injection {kind!r}; valid: {', '.join(INJECTIONS)}")
    return comps


def _addresses(kind: str, spec: ModelSpec) -> bool:
    """Does a changed model address the injected cause? (The right kind of change, as in the advisor's
    mis-specification suite: it adds the missing component, or moves the limiting prior toward the truth.)"""
    def upper(value) -> float:
        return value[1] if isinstance(value, tuple) else float(value)

    if kind == "hidden_agn":
        return spec.member("agn") is not None
    if kind == "high_av":
        if spec.has("dustatt_modified_starburst"):
            return upper(spec.value("dustatt_modified_starburst", "E_BV_lines")) > 0.5
        return spec.has("dustatt_modified_CF00") and upper(spec.value("dustatt_modified_CF00", "Av_ISM")) > 0.891
    if kind == "recent_burst":
        return spec.has("sfhdelayed") and "f_burst" in spec.module("sfhdelayed")
    if kind == "strong_lines":
        return spec.has("nebular") and upper(spec.module("nebular").get("logU", -3.0)) > -3.0
    raise InputError(kind)


INJECTIONS = ("hidden_agn", "high_av", "recent_burst", "strong_lines")


def synthesise(kind: str, seed: int) -> tuple[Photometry, SourcePhotometry]:
    """Noisy photometry of one injected source, as the loop reads it (uJy)."""
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        import bagpipes as pipes
    filters = [get_filter(b) for b in BANDS]
    curves = [str(curve_file(f)) for f in filters]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pipes.model_galaxy(_injected(kind), filt_list=curves, phot_units="mujy")
    true = np.asarray(model.photometry, dtype=float)
    rng = np.random.default_rng(seed)
    sigma = np.array([10 ** (-0.4 * (DEPTH_AB[b] - 23.9)) / 5 for b in BANDS])
    err = np.sqrt(sigma ** 2 + (0.03 * true) ** 2)
    flux = true + rng.normal(0, err)
    source_id = f"{kind}-{seed}"
    phot = Photometry(np.array([source_id]), np.array([REDSHIFT]), filters, flux[None, :], err[None, :],
                      np.zeros((1, len(BANDS)), dtype=bool), np.array([seed]))
    from ..fit import source_photometry

    return phot, source_photometry(phot, 0)


def action_set(graph, spec: ModelSpec, fitter) -> list:
    """Every distinct testable action of the rule graph for this model (rules; the pool random draws come from)."""
    seen, actions = set(), []
    built = fitter.translate(spec)
    for rule in sorted(graph.rules(), key=lambda r: r.rule_id):
        key = (rule.action.parameter, rule.action.module, rule.action.direction)
        if key not in seen and applicable_change(spec, rule.action, fitter, built)[0] is not None:
            seen.add(key)
            actions.append(rule)
    return actions


def run_fit_eval(settings: Settings, per_kind: int = 2, n_live: int = 100, seed: int = 0, workers: int | None = None,
                 out=None, log=print) -> dict:
    directory = report_dir(settings, "fit", out)
    graph = load_graph(settings.index_path)
    fitter = get_fitter("bagpipes", n_live=n_live, seed=seed)
    workers = workers or min(3, usable_cpus())
    sources = [(kind, seed * 1000 + j) for kind in INJECTIONS for j in range(per_kind)]
    synthesised = {(k, s): synthesise(k, s) for k, s in sources}
    spec0 = baseline(REDSHIFT)
    pool_actions = action_set(graph, spec0, fitter)
    rng = random.Random(seed)
    predictions, jobs = [], []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        baselines = dict(zip(sources, pool.map(fit_or_reason, [fitter] * len(sources), [synthesised[s][1] for s in sources],
                                                [spec0] * len(sources))))
        for key in sources:
            kind, s = key
            phot, source = synthesised[key]
            base = baselines[key]
            row = {"source": source.source_id, "kind": kind}
            if isinstance(base, str):
                row["error"] = base
                predictions.append(row)
                continue
            symptoms, _ = fit_symptoms(phot, fitter, base)
            chosen, _ = candidate_actions(graph, symptoms, spec0, fitter, 1, {spec0})
            top = chosen[0] if chosen else None
            draw = rng.choice(pool_actions)
            random_spec, random_change = apply_action(spec0, draw.action)
            row.update({"symptoms": symptoms, "baseline_chi2": round(base.chi2, 2),
                        "baseline_ln_z": round(base.log_evidence, 2),
                        "top1": None if top is None else top[0].rule_id, "top1_change": None if top is None else top[2],
                        "top1_right": top is not None and _addresses(kind, top[1]),
                        "random": draw.rule_id, "random_change": random_change,
                        "random_right": _addresses(kind, random_spec),
                        "right_share": sum(_addresses(kind, apply_action(spec0, a.action)[0]) for a in pool_actions)
                        / len(pool_actions)})
            jobs.append((row, base, None if top is None else top[1], random_spec, source))
            predictions.append(row)
        specs = [(i, which, spec) for i, (_, _, top_spec, random_spec, _) in enumerate(jobs)
                 for which, spec in (("top1", top_spec), ("random", random_spec)) if spec is not None]
        fits = list(pool.map(fit_or_reason, [fitter] * len(specs), [jobs[i][4] for i, _, _ in specs],
                             [spec for _, _, spec in specs]))
    seconds = [b.seconds for b in baselines.values() if not isinstance(b, str)]
    for (i, which, _), result in zip(specs, fits):
        row, base = jobs[i][0], jobs[i][1]
        if isinstance(result, str):
            row[f"{which}_error"] = result
            row[f"{which}_recovered"] = False
            continue
        seconds.append(result.seconds)
        gain = result.log_evidence - base.log_evidence
        row[f"{which}_ln_z_gain"] = round(gain, 2)
        row[f"{which}_chi2"] = round(result.chi2, 2)
        row[f"{which}_recovered"] = bool(row[f"{which}_right"] and gain >= MIN_DELTA_LN_Z)
    for row, *_ in jobs:
        row.setdefault("top1_recovered", False)
    scored = [row for row, *_ in jobs]
    n = len(scored)
    top1 = sum(r["top1_recovered"] for r in scored)
    rand = sum(r["random_recovered"] for r in scored)
    report = {
        "suite": "fit", "fitter": "bagpipes", "sampler": "nautilus", "n_live": n_live, "sources": n,
        "per_kind": per_kind, "injections": list(INJECTIONS), "threshold_ln_z": MIN_DELTA_LN_Z,
        "top1_recovery_rate": round(top1 / max(n, 1), 3),
        "top1_recovery_ci95": [round(v, 3) for v in wilson_interval(top1, n)],
        "random_action_recovery_rate": round(rand / max(n, 1), 3),
        "random_action_recovery_ci95": [round(v, 3) for v in wilson_interval(rand, n)],
        # Both actions are tried on the same sources: compare them pair by pair, not by their marginal rates.
        "paired_sign_test": _paired(scored),
        "top1_right_action_rate": round(sum(r["top1_right"] for r in scored) / max(n, 1), 3),
        "random_action_right_share": round(float(np.mean([r["right_share"] for r in scored])) if scored else 0.0, 3),
        "action_set_size": len(pool_actions),
        "by_kind": {k: {"top1_recovered": sum(r["top1_recovered"] for r in scored if r["kind"] == k),
                        "random_recovered": sum(r["random_recovered"] for r in scored if r["kind"] == k),
                        "n": sum(r["kind"] == k for r in scored)} for k in INJECTIONS},
        "seconds_per_fit": round(float(np.mean(seconds)), 1) if seconds else None,
        "fits": len(seconds), "workers": workers,
        "failed": [r for r in predictions if "error" in r],
    }
    from ..hardware import cpu_info

    report["cpu"] = cpu_info()
    write_jsonl(directory / "predictions.jsonl", predictions)
    headers = ["injection", "n", "top-1 recovered", "random recovered"]
    rows = [[k, v["n"], v["top1_recovered"], v["random_recovered"]] for k, v in report["by_kind"].items()]
    rows.append(["all", n, report["top1_recovery_rate"], report["random_action_recovery_rate"]])
    markdown = ["# eval fit: injection-recovery with bagpipes", "",
                f"{n} sources, nautilus with {n_live} live points, a change counts when ln Z rises by "
                f">= {MIN_DELTA_LN_Z} and it is the right kind of change for the injected cause.", "",
                markdown_table(headers, rows), "",
                f"paired: the advised action alone recovered {report['paired_sign_test']['top1_only']} source(s), the "
                f"random one alone {report['paired_sign_test']['random_only']}; sign test p = "
                f"{report['paired_sign_test']['p_value']}", "",
                f"seconds per fit: {report['seconds_per_fit']} on {report['cpu']}"]
    return finish_report(directory, report, markdown, [(headers, rows)], log=log)


def _paired(scored: list[dict]) -> dict:
    top1_only = sum(r["top1_recovered"] and not r["random_recovered"] for r in scored)
    random_only = sum(r["random_recovered"] and not r["top1_recovered"] for r in scored)
    return {"top1_only": top1_only, "random_only": random_only,
            "p_value": round(paired_sign_test(top1_only, random_only), 4)}


#: With --exhaustive, a change "reaches the best model" when its ln Z is within this of the best single change:
#: Kass & Raftery's "not worth more than a bare mention" (2 ln B < 2).
REACH_LN_Z = 1.0


def run_fit_eval_real(settings: Settings, table: str | Path | None = None, sources: int = 6,
                      ids: list[str] | None = None, n_live: int = 100, seed: int = 0, workers: int | None = None,
                      exhaustive: bool = False, out=None, log=print) -> dict:
    """Real sources: does the advised first change improve the baseline fit decisively (ln Z up >= 3), how
    often does a random applicable change, and what does the advisor's path (baseline + top-1) cost per source?

    ``table`` defaults to the bundled Kokorev et al. 2024 development LRDs; the first ``sources`` rows are used
    (or ``ids``). The truth is unknown here, so the measure is the evidence, not the kind of change.
    ``exhaustive`` also refits every applicable change (one per distinct parameter/module move, about 26) and
    counts the fits needed to reach the best of them (within :data:`REACH_LN_Z`) when changes are tried in the
    advisor's order, against the expectation for a random order.
    """
    from importlib import resources

    from ..fit import source_photometry
    from ..sed.photometry import read_photometry

    directory = report_dir(settings, "fit-real", out)
    table = Path(table) if table else Path(str(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"))
    phot = read_photometry(table, ids=ids)
    if len(phot) == 0:
        raise InputError(f"no readable source in {table}" + (f" with ids {', '.join(ids)}" if ids else ""))
    picked = list(range(len(phot)))[: (len(ids) if ids else sources)]
    graph = load_graph(settings.index_path)
    fitter = get_fitter("bagpipes", n_live=n_live, seed=seed)
    workers = workers or min(3, usable_cpus())
    rng = random.Random(seed)
    singles = [phot.select(np.arange(len(phot)) == i) for i in picked]
    inputs = [source_photometry(phot, i) for i in picked]
    specs0 = [baseline(float(phot.z[i])) for i in picked]
    rows, jobs = [], []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        baselines = list(pool.map(fit_or_reason, [fitter] * len(picked), inputs, specs0))
        for single, source, spec0, base in zip(singles, inputs, specs0, baselines):
            row = {"source": source.source_id, "z": round(source.redshift, 3)}
            rows.append(row)
            if isinstance(base, str):
                row["error"] = base
                continue
            symptoms, _ = fit_symptoms(single, fitter, base)
            # Exhaustive mode wants the whole advised order; its head is the top-1 either way.
            ranked, _ = candidate_actions(graph, symptoms, spec0, fitter, 10 ** 6 if exhaustive else 1, {spec0})
            chosen = ranked[:1]
            candidates = action_set(graph, spec0, fitter)
            draw = rng.choice(candidates)
            random_spec, random_change = apply_action(spec0, draw.action)
            row.update({"symptoms": symptoms, "baseline_chi2": round(base.chi2, 2),
                        "baseline_ln_z": round(base.log_evidence, 2), "baseline_seconds": round(base.seconds, 1),
                        "top1": chosen[0][0].rule_id if chosen else None,
                        "top1_change": chosen[0][2] if chosen else None,
                        "random": draw.rule_id, "random_change": random_change})
            if exhaustive:
                # Advisor order: the ranked, applicable changes first, then the rest of the action set.
                order = [c[1] for c in ranked]
                order += [spec for spec in (apply_action(spec0, a.action)[0] for a in candidates)
                          if spec not in order]
                row.update(_order=order, _random=random_spec, advised_ranked=len(ranked))
                jobs.extend((row, base, "action", source, spec) for spec in order)
                if random_spec not in order:
                    jobs.append((row, base, "random", source, random_spec))
            else:
                for which, spec in (("top1", chosen[0][1] if chosen else None), ("random", random_spec)):
                    if spec is not None:
                        jobs.append((row, base, which, source, spec))
        fits = list(pool.map(fit_or_reason, [fitter] * len(jobs), [j[3] for j in jobs], [j[4] for j in jobs]))
    for (row, base, which, _, spec), result in zip(jobs, fits):
        if which == "action":
            ok = not isinstance(result, str)
            row.setdefault("_gains", {})[spec] = round(result.log_evidence - base.log_evidence, 2) if ok else None
            row.setdefault("_seconds", {})[spec] = result.seconds if ok else 0.0
            continue
        if isinstance(result, str):
            row[f"{which}_error"] = result
            continue
        row[f"{which}_ln_z_gain"] = round(result.log_evidence - base.log_evidence, 2)
        row[f"{which}_chi2"] = round(result.chi2, 2)
        row[f"{which}_seconds"] = round(result.seconds, 1)
    for row in rows:
        if "_order" in row:
            _score_exhaustive(row)
    fitted = [r for r in rows if "error" not in r]
    n = len(fitted)

    def decisive(which: str) -> int:
        return sum(r.get(f"{which}_ln_z_gain", float("-inf")) >= MIN_DELTA_LN_Z for r in fitted)

    top1, rand = decisive("top1"), decisive("random")
    advisor_seconds = [r["baseline_seconds"] + r.get("top1_seconds", 0.0) for r in fitted]
    report = {
        "suite": "fit-real", "fitter": "bagpipes", "sampler": "nautilus", "n_live": n_live, "table": table.name,
        "sources": n, "threshold_ln_z": MIN_DELTA_LN_Z,
        "top1_decisive_rate": round(top1 / max(n, 1), 3),
        "top1_decisive_ci95": [round(v, 3) for v in wilson_interval(top1, n)],
        "random_decisive_rate": round(rand / max(n, 1), 3),
        "random_decisive_ci95": [round(v, 3) for v in wilson_interval(rand, n)],
        "no_advice": sum(r.get("top1") is None for r in fitted),
        "cpu_seconds_per_source": round(float(np.mean(advisor_seconds)), 1) if advisor_seconds else None,
        "workers": workers, "failed": [r for r in rows if "error" in r],
    }
    searched = [r for r in fitted if r.get("fits_to_best_advised") is not None]
    if exhaustive:
        def mean_of(key: str) -> float | None:
            return round(float(np.mean([r[key] for r in searched])), 2) if searched else None

        report.update(exhaustive_sources=len(searched), reach_ln_z=REACH_LN_Z,
                      fits_to_best_advised_mean=mean_of("fits_to_best_advised"),
                      fits_to_best_random_expected_mean=mean_of("fits_to_best_random_expected"),
                      exhaustive_fits_per_source=mean_of("exhaustive_fits"),
                      exhaustive_cpu_seconds_per_source=mean_of("exhaustive_cpu_seconds"))
    else:
        report["exhaustive_search"] = "not run (--exhaustive refits every applicable change, about 26 a source)"
    from ..hardware import cpu_info

    report["cpu"] = cpu_info()
    write_jsonl(directory / "predictions.jsonl", rows)
    headers = ["source", "z", "baseline chi2", "top-1", "ln Z gain", "random", "ln Z gain "]
    table_rows = [[r["source"], r["z"], r.get("baseline_chi2"), r.get("top1"), r.get("top1_ln_z_gain"),
                   r.get("random"), r.get("random_ln_z_gain")] for r in rows]
    markdown = ["# eval fit --real: the advised first change on real sources (bagpipes)", "",
                f"{n} sources of {table.name}, nautilus with {n_live} live points; decisive = ln Z up by >= "
                f"{MIN_DELTA_LN_Z}. top-1 {top1}/{n}, random {rand}/{n}; CPU seconds per source "
                f"(baseline + top-1): {report['cpu_seconds_per_source']}", "",
                markdown_table(headers, table_rows)]
    return finish_report(directory, report, markdown, [(headers, table_rows)], log=log)


def _score_exhaustive(row: dict) -> None:
    """Fill a row's exhaustive-search figures from its per-change gains (private keys are consumed)."""
    order, gains, seconds = row.pop("_order"), row.pop("_gains"), row.pop("_seconds")
    random_spec = row.pop("_random")
    ordered = [gains.get(spec) for spec in order]
    if row.get("top1") is not None:
        row["top1_ln_z_gain"], row["top1_seconds"] = ordered[0], round(seconds[order[0]], 1)
    row.setdefault("random_ln_z_gain", gains.get(random_spec))
    valid = [g for g in ordered if g is not None]
    best = max(valid) if valid else None
    reach = [g is not None and best is not None and g >= best - REACH_LN_Z for g in ordered]
    row["exhaustive_fits"] = len(order)
    row["exhaustive_best_ln_z_gain"] = best
    row["exhaustive_best_model"] = order[ordered.index(best)].describe() if best is not None else None
    # Fits to reach the best, the baseline included: in the advisor's order, and expected in a random order
    # (the first of k good changes among n falls at (n + 1) / (k + 1) on average).
    row["fits_to_best_advised"] = 2 + reach.index(True) if any(reach) else None
    row["fits_to_best_random_expected"] = round(1 + (len(order) + 1) / (sum(reach) + 1), 2) if any(reach) else None
    row["exhaustive_cpu_seconds"] = round(sum(seconds.values()) + row["baseline_seconds"], 1)
