"""The SED advisor for one source: diagnostics, criteria, symptoms, ranked actions, narrative."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph.model import RuleGraph, RuleMatch
from ..graph.retrieve import rule_to_evidence
from ..graph.types import RankedAction
from ..graph.vocabulary import INTERPRETATIONS, SYMPTOMS
from ..index.types import Evidence
from ..llm.base import LLMBackend
from ..llm.degenerate import ReplyGuard
from ..llm.prompt import build_messages, check_citations
from . import diagnostics
from .analysis import SEDAnalysis
from .types import Advice

ADVICE_QUESTION = ("This galaxy's photometry shows the diagnostics and symptoms listed in the evidence. "
                   "Explain briefly what is anomalous about its SED or its fit, and which fitting changes to try "
                   "first and why, citing the rules.")


def rank_actions(graph: RuleGraph, symptoms: list[str], limit: int = 8) -> list[RankedAction]:
    """Rules matching the symptoms, best first; one entry per distinct action (the best rule for it)."""
    seen: set[tuple] = set()
    ranked: list[RankedAction] = []
    for m in graph.match(symptoms, strict=True):
        a = m.rule.action
        key = (a.parameter, a.module, a.direction)
        if key in seen:
            continue
        seen.add(key)
        ranked.append(_ranked(m, len(ranked) + 1))
        if len(ranked) == limit:
            break
    return ranked


def _ranked(m: RuleMatch, rank: int) -> RankedAction:
    r = m.rule
    return RankedAction(rank=rank, rule_id=r.rule_id, direction=r.action.direction, parameter=r.action.parameter,
                        module=r.action.module, range=r.action.range, change=r.action.change,
                        summary=r.action.describe(), score=round(m.score, 4), confidence=round(r.confidence, 3),
                        matched_symptoms=list(m.matched), citations=list(r.citations), rationale=r.rationale,
                        supports=list(r.supports), contradicted_by=list(r.contradicted_by), dissent=r.dissent,
                        also=[list(pair) for pair in r.action.also], match=m)


def _clean(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else round(float(value), 4)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def advise_source(analysis: SEDAnalysis, i: int, graph: RuleGraph, llm: LLMBackend | None = None) -> Advice:
    """Advice for source ``i`` of an analysed table. A language model, when given, writes the narrative.

    Examples
    --------
    >>> from astrorag.sed import synthetic as syn
    >>> from astrorag.sed.analysis import analyse
    >>> advice = advise_source(analyse(syn.population("lrd", 1, seed=2)), 0, RuleGraph.from_seeds())
    >>> advice.is_lrd, "v_shaped_sed" in advice.symptoms
    (True, True)
    """
    phot, diag = analysis.phot, analysis.diagnostics
    names = analysis.symptom_names(i)
    actions = rank_actions(graph, names)
    interpretations: dict[str, float] = {}
    for a in actions:
        for interp in a.supports:
            interpretations[interp] = interpretations.get(interp, 0.0) + a.score
    interp_list = [{"interpretation": k, "description": INTERPRETATIONS[k][0], "weight": round(v, 3)}
                   for k, v in sorted(interpretations.items(), key=lambda kv: -kv[1])]
    z = _clean(phot.z[i])
    sed = phot.source(i)
    fits = {name: {"slope": _clean(fit.slope[i]), "intercept": _clean(fit.intercept[i]), "window_um": list(window)}
            for name, fit, window in (("uv", diag.uv_fit, diagnostics.UV_WINDOW),
                                      ("optical", diag.opt_fit, diagnostics.OPT_WINDOW))
            if np.isfinite(fit.slope[i])}
    advice = Advice(source_id=str(phot.ids[i]), redshift=z, sed=sed, diagnostics=diag.for_source(i),
                    criteria=[c.for_source(i) for c in analysis.criteria], is_lrd=analysis.is_lrd(i),
                    lrd_score=_clean(analysis.lrd_score[i]),
                    lrd_likeness=_clean(analysis.lrd_likeness[i]), lrd_votes=analysis.votes(i),
                    symptoms=names, actions=actions, interpretations=interp_list, narrative="", backend="report",
                    fits=fits)
    if not np.isfinite(phot.z[i]):
        advice.notices.append("no redshift: rest-frame diagnostics need one (give --z or a redshift column)")
    advice.narrative = structured_report(advice)
    if llm is not None and actions:
        told = llm_narrative(advice, graph, llm)
        advice.narrative = told.text
        advice.backend = "report" if told.degenerate else llm.name
        advice.degenerate, advice.degenerate_reason = told.degenerate, told.degenerate_reason
        if told.degenerate:
            advice.notices.append(f"the model's narrative ({llm.name}) was set aside because "
                                  f"{told.degenerate_reason}; the deterministic report stands in for it")
        if told.dropped:
            advice.notices.append(f"dropped citation(s) of rules not given to the model: {', '.join(told.dropped)}")
    return advice


def structured_report(advice: Advice) -> str:
    """The advice as plain text, with no language model: the same content the LLM narrative draws on."""
    d = advice.diagnostics
    lines = [f"Source {advice.source_id} at z = {advice.redshift if advice.redshift is not None else '?'}"]
    lines.append(f"  beta_UV = {d.get('beta_uv')} ({d.get('n_uv')} bands), beta_opt = {d.get('beta_opt')} "
                 f"({d.get('n_opt')} bands), turnover = {d.get('turnover_um')} micron, "
                 f"Balmer-break colour = {d.get('balmer_break_mag')} mag, mid-IR slope = {d.get('mir_slope')}")
    if d.get("line_boosted_bands"):
        slope = d.get("optical_slope_line_free")
        lines.append(f"  [OIII]+H-beta in {', '.join(d['line_boosted_bands'])}"
                     + (f": optical slope without them = {slope}" if slope is not None else "")
                     + (f"; as [OIII]+H-beta on a blue continuum they would need EW = {d['line_ew_fit_aa']} A "
                        f"(p = {d.get('line_reading_p')} against the emitters' EWs, median 1700 A, and every "
                        f"rest-optical band)" if d.get("line_ew_fit_aa") is not None else ""))
    if d.get("chi2_red") is not None:
        regions = ", ".join(f"{r} {d.get(f'resid_{r}')}" for r in ("uv", "optical", "nir", "mir", "fir")
                            if d.get(f"resid_{r}") is not None)
        lines.append(f"  fit: reduced chi2 = {d['chi2_red']}; mean (obs-model)/err by region: {regions}")
    verdict = {True: "a little red dot", False: "not a little red dot", None: "not classifiable (bands missing)"}
    score = f", score {advice.lrd_score:.2f}" if advice.lrd_score is not None else ""
    if advice.lrd_likeness is not None:
        score += f", likeness {advice.lrd_likeness:.2f}"
    lines.append(f"  LRD: {verdict[advice.is_lrd]}{score}; criteria passed: {', '.join(advice.lrd_votes) or 'none'}")
    lines.append(f"  symptoms: {', '.join(advice.symptoms) or 'none'}")
    for a in advice.actions[:5]:
        lines.append(f"  {a.rank}. {a.summary} [rule {a.rule_id}; confidence {a.confidence}; "
                     f"papers {', '.join(a.citations) or 'fit outcomes'}]")
        if a.contradicted_by:
            lines.append(f"     CONTESTED by {', '.join(a.contradicted_by)}: {a.dissent}")
    if advice.interpretations:
        lines.append("  points to: " + ", ".join(i["interpretation"] for i in advice.interpretations))
    return "\n".join(lines)


def narrative_evidence(advice: Advice) -> list[Evidence]:
    """What the narrative writer sees: the report (key D) and the top ranked rules (R1..), quoted as data."""
    evidence = [Evidence(key="D", kind="chunk", text=structured_report(advice), title="diagnostics")]
    evidence += [rule_to_evidence(a.match, f"R{a.rank}") for a in advice.actions[:5] if a.match is not None]
    return evidence


def narrative_messages(advice: Advice, graph: RuleGraph | None = None) -> tuple[list[Evidence], list[dict]]:
    """The evidence and the exact chat messages :func:`llm_narrative` sends (``eval cost`` prices these)."""
    evidence = narrative_evidence(advice)
    return evidence, build_messages(ADVICE_QUESTION, evidence)


@dataclass
class Narrative:
    """A language model's narrative, checked: its text (the deterministic report where the reply was set
    aside), the citations dropped, and why the reply was set aside (``""`` when it was not)."""

    text: str
    dropped: list[str]
    degenerate_reason: str = ""

    @property
    def degenerate(self) -> bool:
        return bool(self.degenerate_reason)


def llm_narrative(advice: Advice, graph: RuleGraph, llm: LLMBackend) -> Narrative:
    """A short narrative from the LLM, given the report and the ranked rules as quoted evidence.

    The reply passes the same guard as an answer (:class:`~astrorag.llm.degenerate.ReplyGuard`): an echo of
    the prompt, a loop, a reply cut at the token limit or no text is stopped as soon as it shows, and the
    deterministic report stands in for it.
    """
    evidence, messages = narrative_messages(advice, graph)
    guard = ReplyGuard(messages, llm.reply_tokens())
    pieces: list[str] = []
    stream = llm.answer(ADVICE_QUESTION, evidence)
    try:
        for piece in stream:
            pieces.append(piece)
            if guard.feed(piece):
                break  # closing the stream stops the model
    finally:
        stream.close()
    reason = guard.finish(finish_reason=llm.last_usage.finish_reason)
    if reason:
        return Narrative(structured_report(advice), [], reason)
    check = check_citations("".join(pieces), evidence)
    return Narrative(check.text, check.dropped)


def describe_symptom(name: str) -> str:
    return SYMPTOMS[name][0]
