"""RuleGraph: typed nodes (symptom, parameter, module, interpretation, paper, rule) in networkx.

Edges: rule --when--> symptom, rule --adjusts--> parameter, rule --changes--> module (a module
action), parameter --in--> module, rule --supports--> interpretation, paper --supports--> rule,
paper --contradicts--> rule. Saved as node-link JSON with sorted nodes and edges, so the file
is byte-stable for the same content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from ..errors import InputError
from ..files import write_atomically
from ..types import content_hash
from . import vocabulary as vocab

# validate_rule, load_seed_rules and seed_rules_path live with the rules; imported here for existing callers.
from .rulebook import (  # noqa: F401
    RULES_FILE,
    RuleBook,
    RuleMatch,
    load_seed_rules,
    read_graph_json,
    refreshed_seeds,
    seed_rules_path,
    validate_rule,
)
from .types import Rule


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
    def from_seeds(cls, path: Path | None = None) -> RuleGraph:
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
        dropped, stored = refreshed_seeds(self.rules(), path)
        for rule_id in dropped:
            self.graph.remove_node(f"rule:{rule_id}")  # its edges go with it; shared nodes stay
        for rule in stored:
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
            # Rule ids share prefixes (att-, lrd-, sfh-): a loose cutoff suggests unrelated ones; rules that
            # start with the name come first.
            close = list(dict.fromkeys([i for i in ids if i.startswith(rule_id)][:3] +
                                       difflib.get_close_matches(rule_id, ids, n=3, cutoff=0.6)))[:3]
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
        """Rank rules against symptoms and mentions: :meth:`RuleBook.match` over this graph's rules."""
        return RuleBook(self.rules()).match(symptoms, parameters, modules, interpretations, limit=limit,
                                            strict=strict)

    def neighbourhood(self, node: str, radius: int = 2) -> RuleGraph:
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
        write_atomically(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> RuleGraph:
        return cls(nx.node_link_graph(read_graph_json(path), directed=True, multigraph=True, edges="edges"))


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
