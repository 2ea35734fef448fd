"""Rules as data: validation, the seed file, and matching symptoms to rules, without networkx.

Answering a question needs only the rules and their scores; importing networkx for the graph around them costs
about a quarter of a second, a large share of a cold ``ask``. :class:`RuleBook` does that reading;
:class:`astrorag.graph.model.RuleGraph` (the graph, for building, learning and drawing) delegates to it.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..types import normalize_arxiv_id
from . import vocabulary as vocab
from .mechanics import check_rule
from .types import Action, Rule

RULES_FILE = "rules.json"


def seed_rules_path() -> Path:
    return Path(str(resources.files("astrorag") / "data" / "seed_rules.toml"))


def _is_paper_id(ident: str) -> bool:
    return bool(normalize_arxiv_id(ident)) or (len(ident) == 19 and ident[:4].isdigit())


def validate_rule(rule: Rule) -> Rule:
    """Check a rule against the vocabulary; return it with canonical names, or raise InputError."""
    if not rule.condition:
        raise InputError(f"rule {rule.rule_id}: no symptoms in its condition")
    condition = tuple(sorted({vocab.validate_symptom(s) for s in rule.condition}))
    action = rule.action
    if action.direction not in vocab.DIRECTIONS:
        raise InputError(f"rule {rule.rule_id}: direction {action.direction!r} is not one of "
                         f"{', '.join(vocab.DIRECTIONS)}")
    module = vocab.validate_module(action.module) if action.module else None
    parameter = vocab.validate_parameter(action.parameter, module) if action.parameter else None
    if parameter and module is None:
        module = vocab.modules_of(parameter)[0]
    if not parameter and not module and action.direction != "check":
        raise InputError(f"rule {rule.rule_id}: an action needs a parameter or a module (or direction 'check')")
    supports = tuple(sorted({vocab.validate_interpretation(i) for i in rule.supports}))
    if not rule.citations and not (rule.origin == "learned" and rule.successes > 0):
        # Learned rules stand on fit outcomes instead of papers; every other rule needs a paper.
        raise InputError(f"rule {rule.rule_id}: at least one citation (arXiv id or bibcode) is required")
    for ident in (*rule.citations, *rule.contradicted_by):
        if not _is_paper_id(ident):
            raise InputError(f"rule {rule.rule_id}: {ident!r} is not an arXiv id or a bibcode")
    if not 0.0 < rule.prior_confidence < 1.0:
        raise InputError(f"rule {rule.rule_id}: confidence must be between 0 and 1, got {rule.prior_confidence}")
    also = tuple((vocab.validate_parameter(p), v) for p, v in action.also)
    if rule.contradicted_by and not rule.dissent:
        raise InputError(f"rule {rule.rule_id}: papers against it ({', '.join(rule.contradicted_by)}) need a "
                         f"'dissent' line saying what they argue")
    rule.condition = condition
    rule.action = Action(action.direction, parameter, module, action.range, action.change, also)
    wrong = check_rule(rule)  # a rule that misuses CIGALE's mechanics makes fits worse: refuse it
    if wrong:
        raise InputError(f"rule {rule.rule_id}: {'; '.join(wrong)}")
    rule.supports = supports
    return rule


def load_seed_rules(path: Path | None = None) -> list[Rule]:
    """Read the curated seed rules (TOML); any rule outside the vocabulary is an error."""
    path = path or seed_rules_path()
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    rules = []
    for entry in table.get("rule", []):
        try:
            rule = Rule(rule_id=entry["id"], condition=tuple(entry["when"]),
                        action=Action(entry["direction"], entry.get("parameter"), entry.get("module"),
                                      entry.get("range", ""), entry.get("change", ""),
                                      tuple(tuple(pair) for pair in entry.get("also", {}).items())),
                        rationale=entry["rationale"], prior_confidence=float(entry["confidence"]),
                        citations=tuple(entry["citations"]), origin="seed",
                        supports=tuple(entry.get("supports", ())),
                        contradicted_by=tuple(entry.get("contradicted_by", ())),
                        dissent=entry.get("dissent", ""), superseded_by=entry.get("superseded_by", ""))
        except KeyError as exc:
            raise InputError(f"{path}: rule {entry.get('id', '?')} lacks the field {exc.args[0]}") from None
        rules.append(validate_rule(rule))
    ids = [r.rule_id for r in rules]
    if len(ids) != len(set(ids)):
        raise InputError(f"{path}: duplicate rule ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return rules


@dataclass
class RuleMatch:
    rule: Rule
    score: float
    matched: tuple[str, ...]
    coverage: float


class RuleBook:
    """The rules of a graph, read-only: what the question and SED paths need.

    Examples
    --------
    >>> book = RuleBook(load_seed_rules())
    >>> book.match({"uv_overestimated", "optical_overestimated"})[0].rule.rule_id
    'att-uvopt-over'
    """

    def __init__(self, rules: Iterable[Rule]):
        self._rules = sorted(rules, key=lambda r: r.rule_id)

    @classmethod
    def load(cls, index_path: Path | None) -> RuleBook:
        """The rules of the index's saved graph (seed rules refreshed, as :func:`load_graph` does), else the
        seed rules."""
        path = index_path / RULES_FILE if index_path is not None else None
        if path is None or not path.is_file():
            return cls(load_seed_rules())
        nodes = read_graph_json(path)["nodes"]
        rules = {r.rule_id: r for r in (Rule.from_dict(n["rule"]) for n in nodes if n.get("kind") == "rule")}
        dropped, stored = refreshed_seeds(list(rules.values()))
        for rule_id in dropped:
            rules.pop(rule_id, None)
        rules.update({r.rule_id: r for r in stored})
        return cls(rules.values())

    def rules(self) -> list[Rule]:
        return list(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return any(rule.rule_id == rule_id for rule in self._rules)

    def get(self, rule_id: str) -> Rule:
        for rule in self._rules:
            if rule.rule_id == rule_id:
                return rule
        raise InputError(f"no rule {rule_id!r}; `astrorag rules list` shows them all")

    def match(self, symptoms: Iterable[str], parameters: Iterable[str] = (), modules: Iterable[str] = (),
              interpretations: Iterable[str] = (), limit: int | None = None,
              strict: bool = False) -> list[RuleMatch]:
        """Rank rules by how well the symptoms match their conditions, their confidence and support.

        A rule needs at least half of its symptoms present (or two of them); mentions of its
        parameter, module or interpretation add to its score (used when linking questions).
        ``strict`` (the SED advisor, whose symptoms are measured, not guessed from words) needs all
        of a rule's symptoms, or two thirds of them and at least two.
        """
        symptoms, parameters, modules = set(symptoms), set(parameters), set(modules)
        interpretations = set(interpretations)
        out = []
        for rule in self._rules:
            matched = tuple(s for s in rule.condition if s in symptoms)
            coverage = len(matched) / len(rule.condition)
            score = 0.0
            enough = (coverage == 1.0 or (len(matched) >= 2 and coverage >= 2 / 3)) if strict else \
                (coverage >= 0.5 or len(matched) >= 2)
            if matched and enough:
                score = rule.confidence * coverage * (1 + 0.25 * (len(matched) - 1))
            # A question that names a parameter, module or interpretation wants the rules about it.
            mention = (1.0 * (rule.action.parameter in parameters) + 0.5 * (rule.action.module in modules)
                       + 0.5 * bool(interpretations & set(rule.supports)))
            score += mention * rule.confidence
            if score > 0:
                score *= 1 + 0.05 * math.log1p(rule.support_count - 1 + rule.successes)
                out.append(RuleMatch(rule, score, matched, coverage))
        out.sort(key=lambda m: (-m.score, -len(m.matched), m.rule.rule_id))
        return out[:limit] if limit else out


def read_graph_json(path: Path) -> dict:
    """A saved rule graph's node-link JSON, or an InputError that says how to start again."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a valid rule graph ({exc}); delete it to start again from the "
                         f"seed rules") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise InputError(f"{path} is not a valid rule graph (no list of nodes); delete it to start again from "
                         f"the seed rules")
    return data


def refreshed_seeds(rules: list[Rule], path: Path | None = None) -> tuple[list[str], list[Rule]]:
    """How saved rules catch up with the seed file: seed rule ids to drop, and rules to (re)store.

    A changed seed rule is replaced by the file's version with its outcome counts kept; a seed rule the file
    no longer has is dropped; a new one is added. Distilled and learned rules are left alone.
    """
    def content(rule: Rule) -> dict:
        counts = ("successes", "failures", "support_count", "confidence")
        return {k: v for k, v in rule.to_dict().items() if k not in counts}

    current = {r.rule_id: r for r in load_seed_rules(path)}
    dropped, stored = [], []
    for old in rules:
        if old.origin != "seed":
            continue
        new = current.get(old.rule_id)
        if new is not None and content(new) == content(old):
            continue
        dropped.append(old.rule_id)
        if new is not None:
            new.successes, new.failures, new.support_count = old.successes, old.failures, old.support_count
            stored.append(new)
    present = {r.rule_id for r in rules}
    stored.extend(rule for rule_id, rule in current.items() if rule_id not in present)
    return dropped, stored
