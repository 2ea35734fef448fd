"""``eval fit``: do the advised changes recover a cause hidden from the baseline fit, and does the loop leave
alone a source whose baseline model is right?

Injection-recovery over truths drawn from distributions (:mod:`.fit_truths`), at the product's own settings by
default: the sampler ``astrorag fit`` runs (``settings.fit.sampler``) and all its rounds (``settings.fit.steps``
x ``settings.fit.width``). A lighter setting runs only when asked (``--n-live``, ``--n-eff``, ``--steps``,
``--width``), and the report says ``"product_settings": false`` with what differs.

Every source goes through the whole loop (fit/loop.py). Where it fails is split in three, each a rate with a
Wilson 95 % interval:

- *detected*: the baseline's symptoms match at least one rule whose change is the right kind for the cause;
- *ranked*: the advisor's first testable change is the right kind;
- *refit*: the loop kept a right-kind change and the final posterior's 68 % interval holds the injected value
  of the cause's key parameter.

Three single changes are also refitted and scored against the baseline, as before: the advisor's first
(``top1``), a random one among the matching rules (``matched_random``) and a plain heuristic (widen whatever
the posterior piles against). ``false_acceptance_rate`` is the share of null truths on which the loop keeps
any change in any round; ``coverage_68`` / ``coverage_95`` are, per parameter with a known true value, the
share of final posteriors whose 68 % / 95 % interval holds it. Each finished source is appended to
``sources.jsonl`` in the report folder and each fit kept in its ``fits/`` cache, so the same command resumes
an interrupted run. Truths, noise and samplers are fixed by ``--seed``.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fit import SamplerOptions, get_fitter
from ..fit.base import FitResult
from ..fit.cache import FitCache
from ..fit.loop import (
    MIN_DELTA_LN_Z,
    acceptance_threshold,
    applicable_change,
    candidate_actions,
    fit_or_reason,
    fit_symptoms,
    run_loop,
)
from ..fit.spec import BOUNDS, ModelSpec, age_cap_myr, apply_action, baseline
from ..graph.model import load_graph
from ..hardware import usable_cpus
from ..settings import Settings
from .fit_truths import BANDS, KEY_PARAMETER, KINDS, Truth, draw_truths, synthesise  # noqa: F401 (BANDS: tests)
from .report import finish_report, markdown_table, report_dir, wilson_interval, write_jsonl


def _addresses(kind: str, spec: ModelSpec) -> bool:
    """Does a changed model address the injected cause? (The right kind of change: it adds the missing
    component, or moves the limiting prior toward the truth.) Nothing is right for a null truth."""
    def upper(value) -> float:
        return value[1] if isinstance(value, tuple) else float(value)

    if kind == "null":
        return False
    if kind == "hidden_agn":
        return spec.member("agn") is not None
    if kind == "high_av":
        if spec.has("dustatt_modified_starburst"):
            dust = spec.module("dustatt_modified_starburst")
            factor = dust.get("E_BV_factor", 0.44)
            return 4.05 * upper(factor) * upper(dust["E_BV_lines"]) > 0.9
        return spec.has("dustatt_modified_CF00") and upper(spec.value("dustatt_modified_CF00", "Av_ISM")) > 0.891
    if kind == "recent_burst":
        return spec.has("sfhdelayed") and "f_burst" in spec.module("sfhdelayed")
    if kind == "strong_lines":
        return spec.has("nebular") and upper(spec.module("nebular").get("logU", -3.0)) > -3.0
    raise InputError(kind)


#: Posterior parameter (bagpipes) -> the model parameter whose range sets its prior.
_EDGE_TO_SPEC = {"dust:Av": ("dustatt_modified_starburst", "E_BV_lines"), "delayed:age": ("sfhdelayed", "age_main"),
                 "delayed:tau": ("sfhdelayed", "tau_main"), "delayed:metallicity": ("bc03", "metallicity")}


def heuristic_change(spec: ModelSpec, fit: FitResult) -> tuple[ModelSpec | None, str]:
    """The plain heuristic: widen, by its own width, every range the posterior piles against (the edge's side).

    >>> from astrorag.fit.base import FitResult
    >>> s = baseline(5.0)
    >>> fit = FitResult("x", s, [], 1.0, 5, 2, 0.0, 0.0, {"dust:Av": {"p16": 0.85, "p50": 0.88, "p84": 0.89}},
    ...                 priors={"dust:Av": (0.0, 0.891, "linear")})
    >>> heuristic_change(s, fit)[0].value("dustatt_modified_starburst", "E_BV_lines")
    (0.0, 1.0)
    """
    new, changes = spec, []
    for name, side in fit.at_prior_edge.items():
        if name not in _EDGE_TO_SPEC or not spec.has(_EDGE_TO_SPEC[name][0]):
            continue
        module, parameter = _EDGE_TO_SPEC[name]
        value = spec.value(module, parameter)
        if not isinstance(value, tuple):
            continue
        lo, hi = value
        floor, ceiling = BOUNDS.get(parameter, (-np.inf, np.inf))
        if parameter == "age_main":
            ceiling = min(ceiling, age_cap_myr(spec.redshift))
        if side == "upper":
            widened = (lo, min(hi + (hi - lo), ceiling))
        else:
            widened = (max(lo / 10 if parameter in ("age_main", "tau_main", "metallicity") else lo - (hi - lo), floor),
                       hi)
        widened = tuple(round(v, 6) for v in widened)
        if widened != value:
            new = new.with_value(module, parameter, widened)
            changes.append(f"{parameter} {lo:g}-{hi:g} -> {widened[0]:g}-{widened[1]:g}")
    return (new, "; ".join(changes)) if changes else (None, "nothing at a prior edge")


def matched_random_change(graph, symptoms: list[str], spec: ModelSpec, fitter, rng: random.Random):
    """A random applicable action among those whose rule conditions the symptoms match: ``(rule id, model,
    change)``, or ``(None, None, why)`` when no matching rule changes the model."""
    from ..sed.advisor import rank_actions

    built = fitter.translate(spec)
    pool = []
    for action in rank_actions(graph, symptoms, limit=100):
        new, change = applicable_change(spec, action, fitter, built)
        if new is not None and all(new != other for _, other, _ in pool):
            pool.append((action.rule_id, new, change))
    if not pool:
        return None, None, "no matching rule changes the model"
    return rng.choice(pool)


def _interval(fit: FitResult | None, name: str, value: float, low: str, high: str) -> bool | None:
    if fit is None or name not in fit.posterior or not np.isfinite(value):
        return None
    q = fit.posterior[name]
    if low not in q or high not in q:
        return None
    return bool(q[low] <= value <= q[high])


def _covers(fit: FitResult | None, name: str, value: float) -> bool | None:
    """Does the fit's 68 % interval hold ``value``? None when the fit has no such parameter."""
    return _interval(fit, name, value, "p16", "p84")


def _rate(hits: int, n: int) -> dict:
    return {"rate": round(hits / n, 3) if n else None, "ci95": [round(v, 3) for v in wilson_interval(hits, n)],
            "hits": hits, "n": n}


def true_values(truth: Truth) -> dict[str, float]:
    """The injected values of the fitted parameters that have one (bagpipes' names and units)."""
    comps = truth.components
    values = {"dust:Av": comps["dust"]["Av"], "delayed:massformed": comps["delayed"]["massformed"],
              "delayed:age": comps["delayed"]["age"], "delayed:tau": comps["delayed"]["tau"],
              "delayed:metallicity": comps["delayed"]["metallicity"], "nebular:logU": comps["nebular"]["logU"]}
    if truth.kind == "hidden_agn":
        values["agn:f5100A"] = truth.key_value
    if truth.kind == "recent_burst":
        values["burst:age"] = comps["burst"]["age"]
    return {k: float(v) for k, v in values.items() if np.isfinite(v)}


def _single_change_row(which: str, rule_id, spec, change, kind: str, fit, base: FitResult, key: tuple[str, float],
                       spread: float) -> dict:
    """The scores of one single change refitted on the baseline (top1, matched_random, heuristic)."""
    row = {f"{which}_rule": rule_id, f"{which}_change": change,
           f"{which}_right": spec is not None and _addresses(kind, spec)}
    if isinstance(fit, str):
        row[f"{which}_error"] = fit
    if not isinstance(fit, FitResult):
        row[f"{which}_recovered"] = False
        return row
    gain = fit.log_evidence - base.log_evidence
    threshold, _ = acceptance_threshold(base.log_evidence_err, fit.log_evidence_err, 1, spread)
    covers = _covers(fit, *key)
    row.update({f"{which}_ln_z_gain": round(gain, 2), f"{which}_threshold": round(threshold, 2),
                f"{which}_chi2": round(fit.chi2, 2), f"{which}_covers": covers, f"{which}_converged": fit.converged,
                f"{which}_recovered": bool(row[f"{which}_right"] and gain >= threshold and covers and fit.converged)})
    return row


def evaluate_truth(truth: Truth, graph, fitter, steps: int, width: int, cache_dir: str | None, seed: int) -> dict:
    """One truth through the whole loop and the three single changes: its row of the report (JSON-ready)."""
    source = synthesise(truth)
    cache = FitCache(cache_dir) if cache_dir else None
    path = run_loop(source, graph, fitter, steps=steps, width=width, workers=1, cache=cache)
    base, final = path.baseline, path.final
    symptoms = path.steps[0].symptoms
    key = (KEY_PARAMETER[truth.kind], truth.key_value)
    ranked, _ = candidate_actions(graph, symptoms, base.spec, fitter, 10 ** 6, {base.spec})
    right = [i for i, (_, spec, _) in enumerate(ranked) if _addresses(truth.kind, spec)]
    kept_right = any(_addresses(truth.kind, fit.spec) for _, fit in path.kept)
    final_covers = _covers(final, *key)
    row = {"source": truth.source_id, "kind": truth.kind, "truth": truth.drawn, "key_parameter": key[0],
           "key_value": key[1], "symptoms": symptoms, "baseline_chi2": round(base.chi2, 2),
           "baseline_ln_z": round(base.log_evidence, 2), "baseline_replicates": path.steps[0].replicates,
           "baseline_inflation": base.inflation_p50, "baseline_quality": base.quality,
           "baseline_converged": base.converged, "baseline_covers": _covers(base, *key),
           "multimodal": path.multimodal, "comparisons": path.comparisons,
           "loop_kept": [s.action["rule_id"] for s in path.accepted],
           "loop_kept_as": [s.kept_as for s in path.accepted],
           "final_model": final.spec.describe(), "final_quality": final.quality,
           "final_inflation": final.inflation_p50, "final_rejected": final.rejected or None,
           "detected": bool(right), "first_right_rank": right[0] + 1 if right else None,
           "ranked": bool(right) and right[0] == 0, "loop_kept_right": kept_right,
           "refit": bool(kept_right and final_covers), "final_covers": final_covers,
           "loop_fits": path.n_fits, "verdict": path.verdict}
    coverage = {}
    for name, value in true_values(truth).items():
        in68, in95 = _interval(final, name, value, "p16", "p84"), _interval(final, name, value, "p2.5", "p97.5")
        if in68 is not None:
            coverage[name] = {"in68": in68, "in95": in95, "true": round(value, 5),
                              "p50": final.posterior[name]["p50"]}
    row["coverage"] = coverage
    fitted = {f.spec: f for f in path.fits[1:]}
    top = (ranked[0][0].rule_id, ranked[0][1], ranked[0][2]) if ranked else (None, None, "no advice")
    rng = random.Random(f"{seed}|{truth.source_id}")
    singles = {"top1": top, "matched_random": matched_random_change(graph, symptoms, base.spec, fitter, rng),
               "heuristic": ("widen-at-edge", *heuristic_change(base.spec, base))}
    seconds = path.seconds
    for which, (rule_id, spec, change) in singles.items():
        fit = None
        if spec is not None:
            fit = fitted.get(spec)
            if fit is None:
                fit = fit_or_reason(fitter, source, spec)
                seconds += fit.seconds if isinstance(fit, FitResult) else 0.0
        row.update(_single_change_row(which, rule_id, spec, change, truth.kind, fit, base, key, path.spread))
    row["loop_seconds"], row["cpu_seconds"] = round(path.seconds, 1), round(seconds, 1)
    return row


def _evaluate_job(args) -> dict:
    truth, graph, fitter, steps, width, cache_dir, seed = args
    try:
        return evaluate_truth(truth, graph, fitter, steps, width, cache_dir, seed)
    except Exception as exc:  # one source's failure is a row that says so, not a lost run
        return {"source": truth.source_id, "kind": truth.kind, "error": f"{type(exc).__name__}: {exc}"}


def _config(options: SamplerOptions, steps: int, width: int, per_kind: int, nulls: int, seed: int) -> dict:
    from dataclasses import asdict

    return {"sampler": asdict(options), "steps": steps, "width": width, "per_kind": per_kind, "nulls": nulls,
            "seed": seed, "fitter_version": get_fitter("bagpipes").version}


def run_fit_eval(settings: Settings, per_kind: int = 6, nulls: int = 10, sampler: SamplerOptions | None = None,
                 seed: int = 0, steps: int | None = None, width: int | None = None, workers: int | None = None,
                 out=None, log=print) -> dict:
    """Run the injection-recovery benchmark (resumable: give the same ``out`` again); return the report."""
    directory = report_dir(settings, "fit", out)
    log = log or (lambda _message: None)
    graph = load_graph(settings.index_path)
    product = settings.fit
    options = sampler or replace(product.sampler, seed=seed)
    steps = product.steps if steps is None else steps
    width = product.width if width is None else width
    differs = {k: (getattr(options, k), getattr(product.sampler, k)) for k in
               ("n_live", "n_eff", "discard_exploration", "max_likelihood_calls")
               if getattr(options, k) != getattr(product.sampler, k)}
    differs.update({k: (v, getattr(product, k)) for k, v in (("steps", steps), ("width", width))
                    if v != getattr(product, k)})
    fitter = get_fitter("bagpipes", options)
    workers = workers or usable_cpus()
    truths = draw_truths(per_kind, nulls, seed)
    if len(truths) == 0:
        raise InputError("eval fit needs at least one truth: give --per-kind or --nulls above 0")
    config = _config(options, steps, width, per_kind, nulls, seed)
    done_file = directory / "sources.jsonl"
    done = _read_done(done_file, config)
    # Kinds take turns, so that the rows finished at any moment of a long run cover every kind alike.
    by_kind = [[t for t in truths if t.kind == kind and t.source_id not in done] for kind in KINDS]
    todo = [t for turn in range(max((len(k) for k in by_kind), default=0)) for k in by_kind if turn < len(k)
            for t in [k[turn]]]
    if done:
        log(f"eval fit: resuming: {len(done)} of {len(truths)} sources already in {done_file}")
    jobs = [(t, graph, fitter, steps, width, str(directory / "fits"), seed) for t in todo]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_evaluate_job, job) for job in jobs]
        for future in as_completed(futures):
            row = future.result()
            done[row["source"]] = row
            with open(done_file, "a") as fh:
                fh.write(json.dumps({"config": config, "row": row}, default=str) + "\n")
            log(f"eval fit: {len(done)}/{len(truths)} {row['source']}: "
                f"{row.get('verdict') or row.get('error')}")
    rows = [done[t.source_id] for t in truths]
    report = _score(rows, options, steps, width, workers, per_kind, nulls, seed, differs)
    write_jsonl(directory / "predictions.jsonl", rows)
    headers = ["truth", "n", "detected", "ranked", "refit", "top-1", "matched random", "heuristic", "loop kept any"]
    table = [[k, v["n"], v["detected"], v["ranked"], v["refit"], v["top1_recovered"], v["matched_random_recovered"],
              v["heuristic_recovered"], v["loop_kept_any"]] for k, v in report["by_kind"].items()]
    cov_headers = ["parameter", "n", "coverage 68 %", "coverage 95 %"]
    cov_table = [[name, c["n"], c["coverage_68"], c["coverage_95"]] for name, c in report["coverage"].items()]
    setting = ("the product's settings" if report["product_settings"] else
               "LIGHTER than the product's settings (" + ", ".join(f"{k} {a} instead of {b}"
                                                                  for k, (a, b) in differs.items()) + ")")
    rates = "; ".join(f"{name} {report[name + '_rate']} {report[name + '_ci95']}"
                      for name in ("detected", "ranked", "refit"))
    markdown = ["# eval fit: injection-recovery with bagpipes, the whole loop", "",
                f"{report['n_truths']} truths drawn with seed {seed} ({report['n_null']} null), at {setting}: "
                f"nautilus with {options.n_live} live points, n_eff {options.n_eff}, "
                f"{options.max_likelihood_calls} likelihood calls at most; {steps} rounds of {width} refits.", "",
                f"Causes ({report['n_truths'] - report['n_null']}): {rates} (rate [95 % interval]).", "",
                markdown_table(headers, table), "", markdown_table(cov_headers, cov_table), "",
                f"false-acceptance rate of the loop on null truths (any change kept in any round): "
                f"{report['false_acceptance_rate']} (95 % interval {report['false_acceptance_ci95']})",
                f"final models the data reject (no model fits; best available): {report['final_rejected']} of "
                f"{report['n_truths']}",
                f"CPU seconds per source (the loop and the single changes): {report['cpu_seconds_per_source']} on "
                f"{report['cpu']['cpu_model']}"]
    return finish_report(directory, report, markdown, [(headers, table), (cov_headers, cov_table)], log=log)


def _read_done(path: Path, config: dict) -> dict[str, dict]:
    """Rows already finished under the same configuration (a changed configuration starts over)."""
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue   # a line cut by an interruption: that source runs again
        if isinstance(entry, dict) and entry.get("config") == config and isinstance(entry.get("row"), dict):
            done[entry["row"]["source"]] = entry["row"]
    return done


def _score(rows: list[dict], options: SamplerOptions, steps: int, width: int, workers: int, per_kind: int,
           nulls: int, seed: int, differs: dict) -> dict:
    """The report from the rows."""
    from ..hardware import cpu_info

    ok = [r for r in rows if "error" not in r]
    causes = [r for r in ok if r["kind"] != "null"]
    null_rows = [r for r in ok if r["kind"] == "null"]

    def count(key: str, among: list[dict]) -> int:
        return sum(bool(r.get(key)) for r in among)

    by_kind = {}
    for kind in KINDS:
        mine = [r for r in ok if r["kind"] == kind]
        by_kind[kind] = {"n": len(mine), "detected": count("detected", mine), "ranked": count("ranked", mine),
                         "refit": count("refit", mine), "top1_recovered": count("top1_recovered", mine),
                         "matched_random_recovered": count("matched_random_recovered", mine),
                         "heuristic_recovered": count("heuristic_recovered", mine),
                         "loop_kept_any": sum(bool(r["loop_kept"]) for r in mine),
                         "final_rejected": sum(bool(r["final_rejected"]) for r in mine)}
    coverage: dict[str, dict] = {}
    for r in ok:
        for name, c in r["coverage"].items():
            entry = coverage.setdefault(name, {"in68": 0, "in95": 0, "n": 0})
            entry["n"] += 1
            entry["in68"] += bool(c["in68"])
            entry["in95"] += bool(c["in95"])
    coverage = {name: {"n": c["n"], "coverage_68": round(c["in68"] / c["n"], 3),
                       "coverage_68_ci95": [round(v, 3) for v in wilson_interval(c["in68"], c["n"])],
                       "coverage_95": round(c["in95"] / c["n"], 3),
                       "coverage_95_ci95": [round(v, 3) for v in wilson_interval(c["in95"], c["n"])]}
                for name, c in sorted(coverage.items())}
    n = len(causes)
    report = {
        "suite": "fit", "fitter": "bagpipes", "sampler": "nautilus", "n_live": options.n_live, "n_eff": options.n_eff,
        "discard_exploration": options.discard_exploration, "max_likelihood_calls": options.max_likelihood_calls,
        "steps": steps, "width": width, "product_settings": not differs,
        "lighter_than_product": {k: {"used": a, "product": b} for k, (a, b) in differs.items()},
        "seed": seed, "n_truths": len(ok), "n_null": len(null_rows), "per_kind": per_kind, "nulls": nulls,
        "kinds": list(KINDS), "kass_raftery_ln_z": MIN_DELTA_LN_Z,
    }
    for name in ("detected", "ranked", "refit"):
        rate = _rate(count(name, causes), n)
        report[f"{name}_rate"], report[f"{name}_ci95"] = rate["rate"], rate["ci95"]
    for which in ("top1", "matched_random", "heuristic"):
        rate = _rate(count(f"{which}_recovered", causes), n)
        report[f"{which}_recovery_rate"], report[f"{which}_recovery_ci95"] = rate["rate"], rate["ci95"]
    far = _rate(sum(bool(r["loop_kept"]) for r in null_rows), len(null_rows))
    seconds = [r["cpu_seconds"] for r in ok]
    report.update({
        "false_acceptance_rate": far["rate"], "false_acceptance_ci95": far["ci95"],
        "false_acceptance_exact_nulls": sum(bool(r["loop_kept"]) for r in null_rows
                                            if "zero_point_offsets_mag" not in r["truth"]),
        "false_acceptance_mismatched_nulls": sum(bool(r["loop_kept"]) for r in null_rows
                                                 if "zero_point_offsets_mag" in r["truth"]),
        "loop_kept_on_causes_rate": round(sum(bool(r["loop_kept"]) for r in causes) / max(n, 1), 3),
        "final_rejected": sum(bool(r["final_rejected"]) for r in ok),
        "coverage": coverage,
        "coverage_68": round(float(np.mean([c["coverage_68"] for c in coverage.values()])), 3) if coverage else None,
        "coverage_95": round(float(np.mean([c["coverage_95"] for c in coverage.values()])), 3) if coverage else None,
        "multimodal_baselines": sum(r["multimodal"] for r in ok),
        "unconverged_baselines": sum(not r["baseline_converged"] for r in ok),
        "by_kind": by_kind,
        "cpu_seconds_per_source": round(float(np.mean(seconds)), 1) if seconds else None,
        "fits_per_source": round(float(np.mean([r["loop_fits"] for r in ok])), 2) if ok else None,
        "workers": workers, "cpu": cpu_info(),
        "failed": [{"source": r["source"], "error": r["error"]} for r in rows if "error" in r],
    })
    return report


def action_set(graph, spec: ModelSpec, fitter) -> list:
    """Every distinct testable action of the rule graph for this model (the pool ``--real``'s random draws from)."""
    seen, actions = set(), []
    built = fitter.translate(spec)
    for rule in sorted(graph.rules(), key=lambda r: r.rule_id):
        key = (rule.action.parameter, rule.action.module, rule.action.direction)
        if key not in seen and applicable_change(spec, rule.action, fitter, built)[0] is not None:
            seen.add(key)
            actions.append(rule)
    return actions


#: With --exhaustive, a change "reaches the best model" when its ln Z is within this of the best single change:
#: Kass & Raftery's "not worth more than a bare mention" (2 ln B < 2).
REACH_LN_Z = 1.0


def run_fit_eval_real(settings: Settings, table: str | Path | None = None, sources: int = 6,
                      ids: list[str] | None = None, sampler: SamplerOptions | None = None, seed: int = 0,
                      workers: int | None = None,
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

    from ..sed.photometry import read_photometry

    directory = report_dir(settings, "fit-real", out)
    table = Path(table) if table else Path(str(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"))
    phot = read_photometry(table, ids=ids)
    if len(phot) == 0:
        raise InputError(f"no readable source in {table}" + (f" with ids {', '.join(ids)}" if ids else ""))
    picked = list(range(len(phot)))[: (len(ids) if ids else sources)]
    graph = load_graph(settings.index_path)
    options = sampler or replace(settings.fit.sampler, seed=seed)
    n_live = options.n_live
    fitter = get_fitter("bagpipes", options)
    workers = workers or min(3, usable_cpus())
    rng = random.Random(seed)
    inputs = [phot.source(i, error_floor=settings.fit.error_floor) for i in picked]
    specs0 = [baseline(float(phot.z[i])) for i in picked]
    rows, jobs = [], []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        baselines = list(pool.map(fit_or_reason, [fitter] * len(picked), inputs, specs0))
        for source, spec0, base in zip(inputs, specs0, baselines):
            row = {"source": source.source_id, "z": round(source.redshift, 3)}
            rows.append(row)
            if isinstance(base, str):
                row["error"] = base
                continue
            symptoms, _ = fit_symptoms(source, fitter, base)
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
