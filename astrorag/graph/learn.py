"""Learn from fit outcomes: update rule confidences and propose rules from repeated successes.

Fit log: JSON Lines, one record per attempted change to a fit::

    {"source_id": "UNCOVER-4286",
     "symptoms": ["uv_overestimated", "optical_overestimated"],
     "action": {"parameter": "E_BV_lines", "module": "dustatt_modified_starburst", "direction": "increase"},
     "chi2_before": 14.2, "chi2_after": 3.9,
     "residuals_before": {"uv": -3.1, "optical": -2.4}, "residuals_after": {"uv": -0.6, "optical": -0.4}}

``action.module`` is optional when the parameter belongs to one module; residuals are (obs - model)/err
per rest-frame region and optional. A change succeeds when the reduced chi-square drops by at least
``improvement`` (20 % by default) and, where residuals are given, the mean absolute residual over the
regions named by the symptoms does not grow.

Records written by ``astrorag fit`` carry the loop's verdict: ``accepted`` (the evidence kept the change) and
``counts`` (the comparison was decisive on models the data accept, :func:`astrorag.fit.loop.learnable`). A
record with ``counts: false`` is read but not counted, and the report says why (``not_counted``); one with
``counts: true`` succeeds when it was accepted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..jsonl import jsonl_lines
from ..types import Problem
from . import vocabulary as vocab
from .model import RuleGraph, new_rule_id, validate_rule
from .regions import REGIONS
from .types import Action, Rule


@dataclass
class FitOutcome:
    symptoms: tuple[str, ...]
    action: Action
    success: bool
    key: str = ""  # see record_key: outcomes with one key count once
    not_counted: str = ""  # why the record is no evidence for its rule (the fit loop's verdict), if it is not


@dataclass
class LearnReport:
    records: int = 0
    successes: int = 0
    failures: int = 0
    rules_updated: int = 0
    learned: list[str] = field(default_factory=list)
    unmatched: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: records already counted (by this file or an earlier one): evidence counts once per source and change
    repeated: int = 0
    #: rule_id -> (confidence before, after), for the rules this update moved
    changes: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: records read but not counted, by the reason the fit loop gave
    not_counted: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        repeated = f"; {self.repeated} repeated record(s) not counted again" if self.repeated else ""
        if self.not_counted:
            reasons = "; ".join(f"{n} x {why}" for why, n in sorted(self.not_counted.items(), key=lambda kv: -kv[1]))
            repeated += f"; {sum(self.not_counted.values())} record(s) not counted as evidence ({reasons})"
        return (f"{self.records} fit records ({self.successes} improved, {self.failures} did not{repeated}); "
                f"{self.rules_updated} rule updates; {self.unmatched} outcomes matched no rule; "
                f"{len(self.learned)} new learned rule(s){': ' + ', '.join(self.learned) if self.learned else ''}"
                f"{f'; {len(self.problems)} bad line(s) skipped' if self.problems else ''}")


class _ActionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    parameter: str | None = Field(None, max_length=100)
    module: str | None = Field(None, max_length=100)
    direction: str = Field(max_length=40)


class FitRecordIn(BaseModel):
    """One fit-log line as it must be: the types, the sizes, and finite chi-squares."""

    model_config = ConfigDict(extra="ignore")
    source_id: str | None = Field(None, max_length=200)
    rule_id: str | None = Field(None, max_length=200)
    symptoms: list[str] = Field(min_length=1, max_length=30)
    action: _ActionIn
    chi2_before: float = Field(gt=0, allow_inf_nan=False)
    chi2_after: float = Field(ge=0, allow_inf_nan=False)
    residuals_before: dict[str, float] | None = Field(None, max_length=20)
    residuals_after: dict[str, float] | None = Field(None, max_length=20)
    accepted: bool | None = None
    counts: bool | None = None
    not_counted: str | None = Field(None, max_length=500)


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "missing":
        return f"missing field {where!r}"
    return f"{where}: {first['msg']}" + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")


def read_fitlog(path: Path, improvement: float = 0.2) -> tuple[list[FitOutcome], list[Problem]]:
    """The outcomes of a fit log; each bad line is a ``Problem`` (``file:line: reason``), the rest are kept."""
    outcomes, problems = [], []
    if not path.is_file():
        raise InputError(f"fit log {path} does not exist")
    for line in jsonl_lines(path):
        number = line.number
        try:
            if line.error:
                raise InputError(line.error)
            if not isinstance(line.value, dict):
                raise InputError(f"a record is a JSON object, not a {type(line.value).__name__}")
            rec = FitRecordIn.model_validate(line.value)
            symptoms = tuple(sorted({vocab.validate_symptom(s) for s in rec.symptoms}))
            act = rec.action
            module = vocab.validate_module(act.module) if act.module else None
            parameter = vocab.validate_parameter(act.parameter, module) if act.parameter else None
            if act.direction not in vocab.DIRECTIONS:
                raise InputError(f"direction {act.direction!r} is not one of {', '.join(vocab.DIRECTIONS)}")
            success = rec.chi2_after <= (1 - improvement) * rec.chi2_before
            res_b, res_a = rec.residuals_before or {}, rec.residuals_after or {}
            regions = [r for r in REGIONS if any(s.startswith(r + "_") for s in symptoms)]
            shared = [r for r in regions if r in res_b and r in res_a]
            if success and shared:
                worse = sum(abs(res_a[r]) for r in shared) > sum(abs(res_b[r]) for r in shared)
                success = not worse
            if rec.counts is not None:
                # The fit loop judged the comparison: its verdict, not a chi-square drop, decides.
                success = bool(rec.accepted)
            why = "" if rec.counts is not False else (rec.not_counted or "the fit loop marked it not decisive")
            action = Action(act.direction, parameter, module)
            outcomes.append(FitOutcome(symptoms, action, success, record_key(rec.source_id, rec.rule_id, symptoms,
                                                                             action, line.value), why))
        except ValidationError as exc:
            problems.append(Problem(str(path), number, _reason(exc)))
        except (InputError, ValueError, TypeError) as exc:
            problems.append(Problem(str(path), number, str(exc)))
    return outcomes, problems


def record_key(source_id: str | None, rule_id: str | None, symptoms: tuple[str, ...], action: Action,
               raw: dict) -> str:
    """What one record counts as: (source, rule, change) when the record names its source, else its content.

    A source's fit of one change is evidence once, however many copies of the record arrive.
    """
    what = ([source_id, rule_id, list(symptoms), action.parameter, action.module, action.direction]
            if source_id else raw)
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _same_action(rule: Rule, action: Action) -> bool:
    if rule.action.direction != action.direction:
        return False
    if action.parameter:
        return rule.action.parameter == action.parameter
    return rule.action.parameter is None and rule.action.module == action.module


def learn(graph: RuleGraph, outcomes: list[FitOutcome], min_successes: int = 3,
          min_rate: float = 0.7, seen: set[str] | None = None) -> LearnReport:
    """Update matching rules' Beta posteriors; turn repeated successes without a rule into learned rules.

    ``seen`` holds the keys of records counted before (see :func:`record_key`); they, and repeats within
    ``outcomes``, are not counted again, and the new keys are added to it.
    """
    report = LearnReport(records=len(outcomes))
    rules = {r.rule_id: r for r in graph.rules()}
    before = {rule_id: rule.confidence for rule_id, rule in rules.items()}
    seen = set() if seen is None else seen
    pending: dict[tuple, list[FitOutcome]] = {}
    for outcome in outcomes:
        if outcome.not_counted:
            # Grouped by the kind of reason, without the figures that make each one unique.
            kind = outcome.not_counted.split(" (")[0]
            report.not_counted[kind] = report.not_counted.get(kind, 0) + 1
            continue
        if outcome.key:
            if outcome.key in seen:
                report.repeated += 1
                continue
            seen.add(outcome.key)
        report.successes += outcome.success
        report.failures += not outcome.success
        matched = False
        for rule in rules.values():
            overlap = len(set(rule.condition) & set(outcome.symptoms)) / len(rule.condition)
            if overlap >= 0.5 and _same_action(rule, outcome.action):
                matched = True
                report.rules_updated += 1
                if outcome.success:
                    rule.successes += 1
                else:
                    rule.failures += 1
        if not matched:
            report.unmatched += 1
            # Group by what was changed: a parameter (whichever module was named with it) or a module.
            act = outcome.action
            key = (outcome.symptoms, act.parameter, None if act.parameter else act.module, act.direction)
            pending.setdefault(key, []).append(outcome)
    for rule in rules.values():
        graph.update_rule(rule)
        if abs(rule.confidence - before[rule.rule_id]) > 1e-9:
            report.changes[rule.rule_id] = (round(before[rule.rule_id], 4), round(rule.confidence, 4))
    for (symptoms, parameter, module, direction), group in sorted(pending.items(), key=str):
        results = [o.success for o in group]
        wins = sum(results)
        named = [o.action.module for o in group if o.action.module]
        module = module or (max(set(named), key=named.count) if named else None)
        if wins >= min_successes and wins / len(results) >= min_rate:
            rule = Rule(rule_id="pending", condition=symptoms, action=Action(direction, parameter, module),
                        rationale=f"Learned from fits: this change improved {wins} of {len(results)} fits "
                                  f"showing these symptoms.",
                        prior_confidence=0.5, citations=(), origin="learned", successes=wins,
                        failures=len(results) - wins)
            try:
                rule = validate_rule(rule)
            except InputError as exc:  # one group that makes no rule does not stop the others
                report.problems.append(Problem("learned rules", 0, f"{' + '.join(symptoms) or 'no symptoms'}: {exc}"))
                continue
            rule.rule_id = new_rule_id("learned", rule)
            graph.add_rule(rule)
            report.learned.append(rule.rule_id)
    return report
