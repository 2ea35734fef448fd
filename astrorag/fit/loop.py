"""The closed loop: fit, read the residuals, rank the rule graph's actions, refit with the top few, keep a
change only when the model comparison says so, repeat.

Model comparison: with a sampler's log-evidence, a change is kept when it raises ln Z by at least
:data:`MIN_DELTA_LN_Z` (2 ln B >= 6, "strong" on the Kass & Raftery 1995 scale); without one, when it lowers
BIC by at least :data:`MIN_DELTA_BIC` (the same scale: Delta BIC ~ -2 ln B).

Every attempted change gives one record in the ``rules learn`` fit-log format, so that real fits update
the rule confidences.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..graph.model import RuleGraph
from ..sed.analysis import analyse
from ..sed.photometry import Photometry
from ..sed.regions import REGIONS
from ..types import RankedAction
from .base import FitError, FitResult, Fitter, SourcePhotometry
from .spec import ModelSpec, NotAModelChange, apply_action, baseline

MIN_DELTA_LN_Z = 3.0
MIN_DELTA_BIC = 6.0


@dataclass
class FitStep:
    """One fit on the path: the baseline (no action) or one attempted change."""

    step: int
    action: dict[str, Any] | None
    change: str
    chi2: float | None
    chi2_red: float | None
    log_evidence: float | None
    bic: float | None
    delta: float | None          # ln Z gain (evidence) or BIC drop, against the model it changed
    accepted: bool
    seconds: float
    symptoms: list[str] = field(default_factory=list)
    not_represented: list[str] = field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class FitPath:
    """The outcome of :func:`run_loop` for one source."""

    source_id: str
    fitter: str
    criterion: str                 # "log_evidence" or "bic"
    steps: list[FitStep]
    final: FitResult
    baseline: FitResult
    records: list[dict[str, Any]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    fits: list[FitResult] = field(default_factory=list, repr=False)
    kept: list[tuple[str, FitResult]] = field(default_factory=list, repr=False)  # (rule id, fit) per kept change

    @property
    def final_model(self) -> ModelSpec:
        return self.final.spec

    @property
    def threshold(self) -> float:
        return MIN_DELTA_LN_Z if self.criterion == "log_evidence" else MIN_DELTA_BIC

    @property
    def accepted(self) -> list[FitStep]:
        return [s for s in self.steps[1:] if s.accepted]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "fitter": self.fitter, "criterion": self.criterion,
                "threshold": self.threshold,
                "steps": [s.to_dict() for s in self.steps], "final_model": self.final_model.to_dict(),
                "final_model_text": self.final_model.describe(),
                "final": self.final.to_dict(), "fits": len(self.steps), "seconds": round(self.seconds, 1),
                "skipped_actions": self.skipped, "records": self.records}


def _symptoms_and_residuals(phot: Photometry, model: list[float]) -> tuple[list[str], dict[str, float]]:
    analysed = analyse(replace(phot, model=np.array([model], dtype=float)))
    resid = {r: round(float(v[0]), 3) for r, v in analysed.diagnostics.resid.items()
             if r in REGIONS and np.isfinite(v[0])}
    return analysed.symptom_names(0), resid


def fit_symptoms(phot: Photometry, fitter: Fitter, result: FitResult) -> tuple[list[str], dict[str, float]]:
    """Symptoms of a fit: the residual and shape symptoms of the photometry with the model, and what the
    posterior shows (a parameter against its prior bound)."""
    symptoms, resid = _symptoms_and_residuals(phot, result.model_ujy)
    return symptoms + [s for s in fitter.edge_symptoms(result) if s not in symptoms], resid


def _action_dict(a: RankedAction) -> dict[str, Any]:
    return {"rule_id": a.rule_id, "rank": a.rank, "direction": a.direction, "parameter": a.parameter,
            "module": a.module, "summary": a.summary, "contested": a.contested}


def _gain(fitter: Fitter, new: FitResult, old: FitResult) -> float:
    if fitter.gives_evidence and new.log_evidence is not None and old.log_evidence is not None:
        return new.log_evidence - old.log_evidence
    return old.bic - new.bic


def applicable_change(spec: ModelSpec, action, fitter: Fitter, built=None) -> tuple[ModelSpec | None, str]:
    """``(new model, what changed)`` when the action changes what the fitter builds, else ``(None, why not)``.

    ``built`` is ``fitter.translate(spec)`` when the caller already has it.
    """
    try:
        new, change = apply_action(spec, action)
    except NotAModelChange as exc:
        return None, str(exc)
    if fitter.translate(new) == (fitter.translate(spec) if built is None else built):
        lost = sorted(set(fitter.not_representable(new)) - set(fitter.not_representable(spec)))
        return None, f"not representable in {fitter.name}: {'; '.join(lost) or 'no change'}"
    return new, change


def candidate_actions(graph: RuleGraph, symptoms: list[str], spec: ModelSpec, fitter: Fitter, width: int,
                      tried: set[ModelSpec]) -> tuple[list[tuple[RankedAction, ModelSpec, str]], list[dict[str, str]]]:
    """The top ``width`` ranked actions that change the model in a way the fitter can build.

    Among actions of equal score, the smaller change comes first: one that keeps the model's modules (a wider
    range of a parameter it already has) before one that adds a component. The first is nested in the model
    and costs the evidence less if it does not help; the order of equal scores is otherwise arbitrary.
    """
    from ..sed.advisor import rank_actions

    applicable, skipped, seen = [], [], set()
    built = fitter.translate(spec)
    for action in rank_actions(graph, symptoms, limit=24):
        if len(applicable) >= width and action.score < applicable[width - 1][0].score:
            break   # every action tied with the last one chosen has been read
        new, change = applicable_change(spec, action, fitter, built)
        if new is None or new in tried or new in seen:
            skipped.append({"rule_id": action.rule_id, "why": change if new is None else
                            "the model already has this change"})
            continue
        seen.add(new)
        applicable.append((action, new, change))
    applicable.sort(key=lambda c: (-c[0].score, len(set(c[1].modules) - set(spec.modules))))
    chosen = applicable[:width]
    tried.update(new for _, new, _ in chosen)
    return chosen, skipped


def fit_or_reason(fitter: Fitter, phot: SourcePhotometry, spec: ModelSpec) -> FitResult | str:
    """The fit, or why it failed (so that one failed fit in a pool does not stop the others)."""
    try:
        return fitter.fit(phot, spec)
    except FitError as exc:
        return str(exc)


def run_loop(phot: Photometry, graph: RuleGraph, fitter: Fitter, source: SourcePhotometry, *, steps: int = 3,
             width: int = 3, workers: int = 1, submit: Callable[..., Future] | None = None,
             progress: Callable[[str], None] | None = None, start: ModelSpec | None = None) -> FitPath:
    """Baseline fit, then up to ``steps`` rounds of refits with the top ``width`` actions.

    After a round that keeps a change, the next round starts from the new model and its symptoms; after a
    round that keeps nothing, it tries the next-ranked actions on the same model. The loop ends after
    ``steps`` rounds or when no untried action changes the model.

    ``submit`` runs fits elsewhere (a dask client's ``submit``); otherwise a process pool of ``workers``
    runs each round's refits (in this process when ``workers`` is 1).

    Raises
    ------
    FitError
        When the baseline fit fails (the source cannot be fitted at all).
    """
    say = progress or (lambda _msg: None)
    spec = start or baseline(source.redshift)
    say(f"{source.source_id}: baseline fit ({spec.describe()})")
    current = fitter.fit(source, spec)
    symptoms, resid = fit_symptoms(phot, fitter, current)
    path = FitPath(source.source_id, fitter.name, "log_evidence" if fitter.gives_evidence else "bic",
                   [FitStep(0, None, "baseline", current.chi2, current.chi2_red, current.log_evidence, current.bic,
                            None, True, current.seconds, symptoms, current.not_represented)],
                   current, current, [], fits=[current])
    tried: set[ModelSpec] = {spec}
    pool = ProcessPoolExecutor(max_workers=workers) if submit is None and workers > 1 else None
    try:
        for number in range(1, steps + 1):
            chosen, skipped = candidate_actions(graph, symptoms, spec, fitter, width, tried)
            path.skipped += [dict(s, step=str(number)) for s in skipped]
            if not chosen:
                say(f"{source.source_id}: no further action the fitter can test")
                break
            say(f"{source.source_id}: round {number}: refitting with {', '.join(a.rule_id for a, _, _ in chosen)}")
            if submit is not None:
                outcomes = [f.result() for f in [submit(fit_or_reason, fitter, source, new) for _, new, _ in chosen]]
            elif pool is not None:
                outcomes = list(pool.map(fit_or_reason, [fitter] * len(chosen), [source] * len(chosen),
                                         [new for _, new, _ in chosen]))
            else:
                outcomes = [fit_or_reason(fitter, source, new) for _, new, _ in chosen]
            round_steps = []
            for (action, new, change), outcome in zip(chosen, outcomes):
                if isinstance(outcome, str):
                    round_steps.append((FitStep(number, _action_dict(action), change, None, None, None, None, None,
                                                False, 0.0, list(symptoms), [], outcome), None, None))
                    continue
                path.fits.append(outcome)
                _, after_resid = _symptoms_and_residuals(phot, outcome.model_ujy)
                gain = _gain(fitter, outcome, current)
                record = {
                    "source_id": source.source_id, "symptoms": list(symptoms),
                    "action": {"parameter": action.parameter, "module": action.module,
                               "direction": action.direction},
                    "rule_id": action.rule_id, "fitter": fitter.name,
                    "chi2_before": round(current.chi2_red, 4), "chi2_after": round(outcome.chi2_red, 4),
                    "residuals_before": resid, "residuals_after": after_resid,
                    path.criterion + "_gain": round(gain, 3), "accepted": False}
                path.records.append(record)
                round_steps.append((FitStep(number, _action_dict(action), change, outcome.chi2, outcome.chi2_red,
                                            outcome.log_evidence, outcome.bic, gain, False, outcome.seconds,
                                            list(symptoms), outcome.not_represented), outcome, record))
            best = max((r for r in round_steps if r[1] is not None), key=lambda r: r[0].delta, default=None)
            if best is not None and best[0].delta >= path.threshold:
                best[0].accepted = best[2]["accepted"] = True
                current, spec = best[1], best[1].spec
                path.kept.append((best[0].action["rule_id"], current))
                symptoms, resid = fit_symptoms(phot, fitter, current)
                say(f"{source.source_id}: kept {best[0].action['rule_id']} "
                    f"({path.criterion} gain {best[0].delta:.1f}; chi2 {current.chi2:.1f})")
            path.steps += [step for step, _, _ in round_steps]
            if best is None or not best[0].accepted:
                # The same model and symptoms: the next round tries the next-ranked actions not yet tried.
                say(f"{source.source_id}: no change passed the {path.criterion} threshold; trying the next actions")
    finally:
        if pool is not None:
            pool.shutdown()
    path.final = current
    return path
