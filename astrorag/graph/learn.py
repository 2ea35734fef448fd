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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..jsonl import jsonl_lines
from ..sed.regions import REGIONS
from ..types import Action, Problem, Rule
from . import vocabulary as vocab
from .model import RuleGraph, new_rule_id, validate_rule


@dataclass
class FitOutcome:
    symptoms: tuple[str, ...]
    action: Action
    success: bool


@dataclass
class LearnReport:
    records: int = 0
    successes: int = 0
    failures: int = 0
    rules_updated: int = 0
    learned: list[str] = field(default_factory=list)
    unmatched: int = 0
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.records} fit records ({self.successes} improved, {self.failures} did not); "
                f"{self.rules_updated} rule updates; {self.unmatched} outcomes matched no rule; "
                f"{len(self.learned)} new learned rule(s){': ' + ', '.join(self.learned) if self.learned else ''}"
                f"{f'; {len(self.problems)} bad line(s) skipped' if self.problems else ''}")


def read_fitlog(path: Path, improvement: float = 0.2) -> tuple[list[FitOutcome], list[Problem]]:
    outcomes, problems = [], []
    if not path.is_file():
        raise InputError(f"fit log {path} does not exist")
    for line in jsonl_lines(path):
        number, rec = line.number, line.value
        try:
            if line.error:
                raise InputError(line.error)
            symptoms = tuple(sorted({vocab.validate_symptom(s) for s in rec["symptoms"]}))
            act = rec["action"]
            module = vocab.validate_module(act["module"]) if act.get("module") else None
            parameter = vocab.validate_parameter(act["parameter"], module) if act.get("parameter") else None
            direction = act["direction"]
            if direction not in vocab.DIRECTIONS:
                raise InputError(f"direction {direction!r} is not one of {', '.join(vocab.DIRECTIONS)}")
            before, after = float(rec["chi2_before"]), float(rec["chi2_after"])
            if before <= 0:
                raise InputError("chi2_before must be positive")
            success = after <= (1 - improvement) * before
            res_b, res_a = rec.get("residuals_before") or {}, rec.get("residuals_after") or {}
            regions = [r for r in REGIONS if any(s.startswith(r + "_") for s in symptoms)]
            shared = [r for r in regions if r in res_b and r in res_a]
            if success and shared:
                worse = sum(abs(res_a[r]) for r in shared) > sum(abs(res_b[r]) for r in shared)
                success = not worse
            outcomes.append(FitOutcome(symptoms, Action(direction, parameter, module), success))
        except KeyError as exc:
            problems.append(Problem(str(path), number, f"missing field {exc.args[0]!r}"))
        except (InputError, ValueError, TypeError) as exc:
            problems.append(Problem(str(path), number, str(exc)))
    return outcomes, problems


def _same_action(rule: Rule, action: Action) -> bool:
    if rule.action.direction != action.direction:
        return False
    if action.parameter:
        return rule.action.parameter == action.parameter
    return rule.action.parameter is None and rule.action.module == action.module


def learn(graph: RuleGraph, outcomes: list[FitOutcome], min_successes: int = 3,
          min_rate: float = 0.7) -> LearnReport:
    """Update matching rules' Beta posteriors; turn repeated successes without a rule into learned rules."""
    report = LearnReport(records=len(outcomes))
    rules = {r.rule_id: r for r in graph.rules()}
    pending: dict[tuple, list[FitOutcome]] = {}
    for outcome in outcomes:
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
            rule = validate_rule(rule)
            rule.rule_id = new_rule_id("learned", rule)
            graph.add_rule(rule)
            report.learned.append(rule.rule_id)
    return report
