"""RuleGraph: typed nodes (symptom, parameter, module, interpretation, paper, rule) in networkx.

Edges: rule --when--> symptom, rule --adjusts--> parameter, rule --changes--> module (a module
action), parameter --in--> module, rule --supports--> interpretation, paper --supports--> rule,
paper --contradicts--> rule. Saved as node-link JSON with sorted nodes and edges, so the file
is byte-stable for the same content.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

import networkx as nx

from ..errors import InputError
from ..types import Action, Rule, content_hash, normalize_arxiv_id
from . import vocabulary as vocab
from .mechanics import check_rule

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
                        dissent=entry.get("dissent", ""))
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


class RuleGraph:
    """The graph of rules and what they connect.

    Examples
    --------
    >>> g = RuleGraph.from_seeds()
    >>> len(g.rules()) >= 40
    True
    >>> top = g.match({"uv_overestimated", "optical_overestimated"})[0]
    >>> top.rule.rule_id, top.rule.action.parameter
    ('att-uvopt-over', 'E_BV_lines')
    """

    def __init__(self, graph: nx.MultiDiGraph | None = None):
        self.graph = graph if graph is not None else nx.MultiDiGraph()

    # ---- building ----------------------------------------------------------------------------
    @classmethod
    def from_seeds(cls, path: Path | None = None) -> "RuleGraph":
        g = cls()
        for rule in load_seed_rules(path):
            g.add_rule(rule)
        return g

    def _node(self, kind: str, name: str, **attrs) -> str:
        node = f"{kind}:{name}"
        if node not in self.graph:
            self.graph.add_node(node, kind=kind, name=name, **attrs)
        return node

    def _edge(self, a: str, b: str, relation: str) -> None:
        if not self.graph.has_edge(a, b, key=relation):
            self.graph.add_edge(a, b, key=relation, relation=relation)

    def find_equivalent(self, rule: Rule) -> Rule | None:
        for existing in self.rules():
            if existing.signature == rule.signature:
                return existing
        return None

    def add_rule(self, rule: Rule) -> tuple[Rule, bool]:
        """Add a validated rule; an equivalent rule already present gains support instead.

        Returns the rule now in the graph and whether it was new.
        """
        rule = validate_rule(rule)
        twin = self.find_equivalent(rule)
        if twin is not None and twin.rule_id != rule.rule_id:
            twin.support_count += rule.support_count
            twin.citations = tuple(dict.fromkeys((*twin.citations, *rule.citations)))
            self._store(twin)
            return twin, False
        self._store(rule)
        return rule, True

    def _store(self, rule: Rule) -> None:
        node = self._node("rule", rule.rule_id)
        self.graph.nodes[node]["rule"] = rule.to_dict()
        for s in rule.condition:
            self._edge(node, self._node("symptom", s, description=vocab.SYMPTOMS[s][0]), "when")
        if rule.action.parameter:
            p = self._node("parameter", rule.action.parameter)
            self._edge(node, p, "adjusts")
            for m in ([rule.action.module] if rule.action.module else vocab.modules_of(rule.action.parameter)):
                self._edge(p, self._node("module", m), "in")
        elif rule.action.module:
            self._edge(node, self._node("module", rule.action.module), "changes")
        for i in rule.supports:
            self._edge(node, self._node("interpretation", i, description=vocab.INTERPRETATIONS[i][0]), "supports")
        for paper in rule.citations:
            self._edge(self._node("paper", paper), node, "supports")
        for paper in rule.contradicted_by:
            self._edge(self._node("paper", paper), node, "contradicts")

    def update_rule(self, rule: Rule) -> None:
        self._store(rule)

    def refresh_seeds(self, path: Path | None = None) -> None:
        """Bring seed rules up to the seed file (outcome counts kept); drop seed rules the file no longer has."""
        def content(rule: Rule) -> dict:
            counts = ("successes", "failures", "support_count", "confidence")
            return {k: v for k, v in rule.to_dict().items() if k not in counts}

        current = {r.rule_id: r for r in load_seed_rules(path)}
        for old in self.rules():
            if old.origin != "seed":
                continue
            new = current.get(old.rule_id)
            if new is not None and content(new) == content(old):
                continue
            self.graph.remove_node(f"rule:{old.rule_id}")  # its edges go with it; shared nodes stay
            if new is not None:
                new.successes, new.failures, new.support_count = old.successes, old.failures, old.support_count
                self._store(new)
        present = {r.rule_id for r in self.rules()}
        for rule_id, rule in current.items():
            if rule_id not in present:
                self._store(rule)

    # ---- reading -----------------------------------------------------------------------------
    def rules(self) -> list[Rule]:
        return [Rule.from_dict(d["rule"]) for n, d in sorted(self.graph.nodes(data=True))
                if d.get("kind") == "rule"]

    def get(self, rule_id: str) -> Rule:
        node = f"rule:{rule_id}"
        if node not in self.graph:
            import difflib

            ids = [r.rule_id for r in self.rules()]
            close = difflib.get_close_matches(rule_id, ids, n=3, cutoff=0.4)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InputError(f"no rule {rule_id!r}{hint}; `astrorag rules list` shows them all")
        return Rule.from_dict(self.graph.nodes[node]["rule"])

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, kind in self.graph.nodes(data="kind"):
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items()))

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
        for rule in self.rules():
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

    def neighbourhood(self, node: str, radius: int = 2) -> "RuleGraph":
        if node not in self.graph:
            raise InputError(f"no node {node!r} in the rule graph; nodes look like rule:ID, symptom:NAME, "
                             f"parameter:NAME, module:NAME, paper:ID")
        return RuleGraph(nx.ego_graph(self.graph, node, radius=radius, undirected=True).copy())

    # ---- persistence -------------------------------------------------------------------------
    def to_json(self) -> str:
        data = nx.node_link_data(self.graph, edges="edges")
        data["nodes"] = sorted(data["nodes"], key=lambda n: n["id"])
        data["edges"] = sorted(data["edges"], key=lambda e: (e["source"], e["target"], e["key"]))
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "RuleGraph":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not a valid rule graph ({exc}); delete it to start again from the "
                             f"seed rules") from exc
        return cls(nx.node_link_graph(data, directed=True, multigraph=True, edges="edges"))


def graph_path(index_path: Path) -> Path:
    return index_path / RULES_FILE


def load_graph(index_path: Path | None) -> RuleGraph:
    """The index's graph when it has one, else a fresh graph of the seed rules.

    A saved graph keeps what it learned (fit outcomes, distilled and learned rules), but its seed rules are
    replaced by the current seed file's: a corrected seed rule must reach indexes saved before the correction.
    """
    if index_path is not None and graph_path(index_path).is_file():
        graph = RuleGraph.load(graph_path(index_path))
        graph.refresh_seeds()
        return graph
    return RuleGraph.from_seeds()


def new_rule_id(origin: str, rule: Rule) -> str:
    return f"{origin[0]}-{content_hash(rule.signature, size=10)}"
