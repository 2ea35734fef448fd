"""``eval fit``: do the advised changes recover a cause hidden from the baseline fit, and does the loop leave
alone a source whose baseline model is right?

Injection-recovery over truths drawn from distributions (:mod:`.fit_truths`): at least 30 independent truths,
each generated with bagpipes and fitted with a baseline that differs from the generator where real data would
(eta, log U, AGN slopes, broad lines), plus null truths where the baseline *is* the generator. Every source
goes through the loop's own first round (two baseline seeds, the top ``width`` advised changes, the calibrated
acceptance rule and its confirming refit), and three single changes are refitted and scored alike:

- the advisor's first testable action (``top1``);
- a random action among those whose rule conditions the symptoms match (``matched_random``);
- a plain heuristic: widen whatever parameter the baseline's posterior piles against a prior edge.

A change *recovers* the truth when it is the right kind of change for the cause, clears the acceptance
threshold over the baseline (one candidate: no width correction), and its posterior's 16-84 % interval holds
the injected value of the cause's key parameter. Rates come with Wilson 95 % intervals; the loop's
``false_acceptance_rate`` is the share of null truths where its first round keeps any change; ``coverage_68``
the share of key parameters inside their 68 % intervals. The truths, the noise and the samplers are all fixed
by ``--seed``.
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fit import SamplerOptions, get_fitter
from ..fit.base import FitResult
from ..fit.loop import (MIN_DELTA_LN_Z, acceptance_threshold, applicable_change, candidate_actions, fit_or_reason,
                        fit_symptoms, run_loop)
from ..fit.spec import BOUNDS, ModelSpec, age_cap_myr, apply_action, baseline
from ..graph.model import load_graph
from ..hardware import usable_cpus
from ..settings import Settings
from .fit_truths import BANDS, KEY_PARAMETER, KINDS, Truth, draw_truths, synthesise  # noqa: F401 (BANDS: tests)
from .report import finish_report, markdown_table, report_dir, wilson_interval, write_jsonl

#: The sampler the benchmark runs at (fewer live points than a science fit, to fit 200+ fits in an hour on
#: two cores; the README gives both figures). Its seed comes from --seed.
EVAL_SAMPLER = {"n_live": 100, "n_eff": 500, "discard_exploration": True, "max_likelihood_calls": 100_000}


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


def _loop_first_round(args):
    """One source through the loop's first round (in a pool worker)."""
    source, graph, fitter, width = args
    return run_loop(source, graph, fitter, steps=1, width=width, workers=1)


def _covers(fit: FitResult | None, name: str, value: float) -> bool | None:
    """Does the fit's 68 % interval hold ``value``? None when the fit has no such parameter."""
    if fit is None or name not in fit.posterior or not np.isfinite(value):
        return None
    q = fit.posterior[name]
    return bool(q["p16"] <= value <= q["p84"])


def _rate(hits: int, n: int) -> dict:
    return {"rate": round(hits / n, 3) if n else None, "ci95": [round(v, 3) for v in wilson_interval(hits, n)],
            "hits": hits, "n": n}


def run_fit_eval(settings: Settings, per_kind: int = 6, nulls: int = 6, sampler: SamplerOptions | None = None,
                 seed: int = 0, width: int = 3, workers: int | None = None, out=None, log=print) -> dict:
    """Run the injection-recovery benchmark; write the report folder and return the report."""
    directory = report_dir(settings, "fit", out)
    graph = load_graph(settings.index_path)
    options = sampler or SamplerOptions(seed=seed, **EVAL_SAMPLER)
    fitter = get_fitter("bagpipes", options)
    workers = workers or usable_cpus()
    truths = draw_truths(per_kind, nulls, seed)
    if len(truths) == 0:
        raise InputError("eval fit needs at least one truth: give --per-kind or --nulls above 0")
    made = [synthesise(t) for t in truths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        paths = list(pool.map(_loop_first_round, [(source, graph, fitter, width) for source in made]))
        rows, jobs = [], []
        for truth, source, path in zip(truths, made, paths):
            base = path.baseline
            symptoms = path.steps[0].symptoms
            fitted = {f.spec: f for f in path.fits[1:]}   # round-1 refits by model (replicate 0 first)
            row = {"source": truth.source_id, "kind": truth.kind, "truth": truth.drawn,
                   "key_parameter": KEY_PARAMETER[truth.kind], "key_value": truth.key_value,
                   "symptoms": symptoms, "baseline_chi2": round(base.chi2, 2),
                   "baseline_ln_z": round(base.log_evidence, 2), "baseline_replicates": path.steps[0].replicates,
                   "multimodal": path.multimodal, "loop_kept": [s.action["rule_id"] for s in path.accepted],
                   "loop_seconds": round(path.seconds, 1), "loop_fits": path.n_fits, "baseline_quality": base.quality,
                   "baseline_covers": _covers(base, KEY_PARAMETER[truth.kind], truth.key_value),
                   "baseline_converged": base.converged}
            chosen, _ = candidate_actions(graph, symptoms, base.spec, fitter, 1, {base.spec})
            top = (chosen[0][0].rule_id, chosen[0][1], chosen[0][2]) if chosen else (None, None, "no advice")
            rng = random.Random(f"{seed}|{truth.source_id}")
            candidates = {"top1": top, "matched_random": matched_random_change(graph, symptoms, base.spec, fitter, rng),
                          "heuristic": ("widen-at-edge", *heuristic_change(base.spec, base))}
            for which, (rule_id, spec, change) in candidates.items():
                row[f"{which}_rule"], row[f"{which}_change"] = rule_id, change
                row[f"{which}_right"] = spec is not None and _addresses(truth.kind, spec)
                if spec is None:
                    continue
                if spec in fitted:
                    row[f"_{which}_fit"] = fitted[spec]
                else:
                    jobs.append((row, which, source, spec))
            row["_base"] = base
            row["_spread"] = path.spread
            rows.append(row)
        results = list(pool.map(fit_or_reason, [fitter] * len(jobs), [j[2] for j in jobs], [j[3] for j in jobs]))
    for (row, which, _, _), result in zip(jobs, results):
        if isinstance(result, str):
            row[f"{which}_error"] = result
        else:
            row[f"_{which}_fit"] = result
    report = _score(rows, truths, options, width, workers, per_kind, nulls, seed)
    for row in rows:
        for key in [k for k in row if k.startswith("_")]:
            row.pop(key)
    write_jsonl(directory / "predictions.jsonl", rows)
    headers = ["truth", "n", "top-1", "matched random", "heuristic", "coverage 68 %"]
    table = [[k, v["n"], v["top1_recovered"], v["matched_random_recovered"], v["heuristic_recovered"],
              v["coverage_68"]] for k, v in report["by_kind"].items()]
    table.append(["all causes", report["n_truths"] - report["n_null"], report["top1_recovery_rate"],
                  report["matched_random_recovery_rate"], report["heuristic_recovery_rate"], report["coverage_68"]])
    markdown = ["# eval fit: injection-recovery with bagpipes", "",
                f"{report['n_truths']} truths drawn with seed {seed} ({report['n_null']} null), nautilus with "
                f"{options.n_live} live points, n_eff {options.n_eff}. A change recovers the truth when it is the "
                "right kind, clears the acceptance threshold and its 68 % interval holds the injected value.", "",
                markdown_table(headers, table), "",
                f"false-acceptance rate of the loop's first round on null truths: {report['false_acceptance_rate']} "
                f"(95 % interval {report['false_acceptance_ci95']})",
                f"CPU seconds per source (the loop's first round): {report['cpu_seconds_per_source']} on "
                f"{report['cpu']['cpu_model']}"]
    return finish_report(directory, report, markdown, [(headers, table)], log=log)


def _score(rows: list[dict], truths: list[Truth], options: SamplerOptions, width: int, workers: int, per_kind: int,
           nulls: int, seed: int) -> dict:
    """Fill each row's verdicts and return the report (private keys of the rows are read here)."""
    from ..hardware import cpu_info

    covered_all = []
    for row in rows:
        base = row["_base"]
        for which in ("top1", "matched_random", "heuristic"):
            fit = row.get(f"_{which}_fit")
            if fit is None:
                row[f"{which}_recovered"] = False
                continue
            gain = fit.log_evidence - base.log_evidence
            threshold, _ = acceptance_threshold(base.log_evidence_err, fit.log_evidence_err, 1, row["_spread"])
            covers = _covers(fit, row["key_parameter"], row["key_value"])
            row.update({f"{which}_ln_z_gain": round(gain, 2), f"{which}_threshold": round(threshold, 2),
                        f"{which}_chi2": round(fit.chi2, 2), f"{which}_covers": covers,
                        f"{which}_converged": fit.converged,
                        f"{which}_recovered": bool(row[f"{which}_right"] and gain >= threshold and covers
                                                   and fit.converged)})
        if row["kind"] == "null":
            covered_all.append(row["baseline_covers"])
        elif row.get("top1_covers") is not None:
            covered_all.append(row["top1_covers"])
    causes = [r for r in rows if r["kind"] != "null"]
    null_rows = [r for r in rows if r["kind"] == "null"]

    def hits(which: str, among: list[dict]) -> int:
        return sum(bool(r.get(f"{which}_recovered")) for r in among)

    n = len(causes)
    covered = [c for c in covered_all if c is not None]
    false_accepts = sum(bool(r["loop_kept"]) for r in null_rows)
    by_kind = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        cov = [r["baseline_covers"] if kind == "null" else r.get("top1_covers") for r in mine]
        cov = [c for c in cov if c is not None]
        by_kind[kind] = {"n": len(mine), "top1_recovered": hits("top1", mine),
                         "matched_random_recovered": hits("matched_random", mine),
                         "heuristic_recovered": hits("heuristic", mine),
                         "loop_kept_any": sum(bool(r["loop_kept"]) for r in mine),
                         "coverage_68": round(float(np.mean(cov)), 3) if cov else None, "coverage_n": len(cov)}
    seconds = [r["loop_seconds"] for r in rows]
    top1, rand, heur = (_rate(hits(w, causes), n) for w in ("top1", "matched_random", "heuristic"))
    far = _rate(false_accepts, len(null_rows))
    return {
        "suite": "fit", "fitter": "bagpipes", "sampler": "nautilus", "n_live": options.n_live, "n_eff": options.n_eff,
        "discard_exploration": options.discard_exploration, "seed": seed, "width": width,
        "n_truths": len(truths), "n_null": len(null_rows), "per_kind": per_kind, "nulls": nulls,
        "kinds": list(KINDS), "kass_raftery_ln_z": MIN_DELTA_LN_Z,
        "top1_recovery_rate": top1["rate"], "top1_recovery_ci95": top1["ci95"],
        "matched_random_recovery_rate": rand["rate"], "matched_random_recovery_ci95": rand["ci95"],
        "heuristic_recovery_rate": heur["rate"], "heuristic_recovery_ci95": heur["ci95"],
        "top1_right_kind_rate": round(sum(r["top1_right"] for r in causes) / max(n, 1), 3),
        "false_acceptance_rate": far["rate"], "false_acceptance_ci95": far["ci95"],
        "loop_kept_on_causes_rate": round(sum(bool(r["loop_kept"]) for r in causes) / max(n, 1), 3),
        "coverage_68": round(float(np.mean(covered)), 3) if covered else None, "coverage_n": len(covered),
        "multimodal_baselines": sum(r["multimodal"] for r in rows),
        "unconverged_baselines": sum(not r["baseline_converged"] for r in rows),
        "unconverged_refits": sum(r.get(f"{w}_converged") is False for r in rows
                                  for w in ("top1", "matched_random", "heuristic")),
        "by_kind": by_kind,
        "cpu_seconds_per_source": round(float(np.mean(seconds)), 1) if seconds else None,
        "fits_per_source": round(float(np.mean([r["loop_fits"] for r in rows])), 2) if rows else None,
        "seconds_per_fit": round(sum(seconds) / max(sum(r["loop_fits"] for r in rows), 1), 1) if rows else None,
        "workers": workers, "cpu": cpu_info(),
        "failed": [r["source"] for r in rows if any(k.endswith("_error") for k in r)],
    }


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
    options = sampler or SamplerOptions(seed=seed, **EVAL_SAMPLER)
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
