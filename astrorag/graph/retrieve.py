"""Graph retrieval: link a question to vocabulary terms and bring the rules about them as evidence."""

from __future__ import annotations

from ..index.types import Evidence
from ..sentences import split_sentences
from .rulebook import RuleBook, RuleMatch
from .types import Rule
from .vocabulary import link_text


def rule_text(rule: Rule, brief: bool = False) -> str:
    """How a rule reads as evidence: what to do, why, how sure, and on whose authority.

    ``brief`` keeps the first sentence of the rationale and of any dissent (for a prompt that must stay
    short); what to do, the papers for it and the papers against it are always there.
    """
    def first(text: str) -> str:
        return (split_sentences(text) or [text])[0] if brief else text

    text = (f"{rule.describe()} Why: {first(rule.rationale)} (rule {rule.rule_id}, {rule.origin}, confidence "
            f"{rule.confidence:.2f}; papers for: {', '.join(rule.citations) or 'fit outcomes'})")
    if rule.contested:
        text += f" CONTESTED by {', '.join(rule.contradicted_by)}: {first(rule.dissent)}"
    return text


def rule_to_evidence(match: RuleMatch, key: str) -> Evidence:
    rule = match.rule
    return Evidence(key=key, kind="rule", text=rule_text(rule), rule_id=rule.rule_id, title=rule.describe(),
                    papers=rule.citations, papers_against=rule.contradicted_by, dissent=rule.dissent, scores={"graph": match.score}, fused_score=match.score)


def graph_search(graph: RuleBook, question: str, limit: int = 3) -> list[RuleMatch]:
    """Rules for a question: its symptoms, parameters, modules and interpretations, linked by alias.

    Examples
    --------
    >>> from astrorag.graph.rulebook import load_seed_rules
    >>> g = RuleBook(load_seed_rules())
    >>> [m.rule.rule_id for m in graph_search(g, "my fit overestimates the UV and optical bands", 1)]
    ['att-uvopt-over']
    """
    linked = link_text(question)
    if not any(linked.values()):
        return []
    return graph.match(linked["symptoms"], linked["parameters"], linked["modules"], linked["interpretations"],
                       limit=limit)
