"""The SED advisor's diagnostics and ranked actions as markdown (the terminal reads the advisor's own
structured report)."""

from __future__ import annotations

import html

from .answer import paper_link


def diagnostics_markdown(advice) -> str:
    """The measured quantities, the LRD verdict with each published criterion, and the symptoms."""
    d = advice.diagnostics
    keys = [("beta_uv", "UV slope beta_UV"), ("beta_opt", "optical slope beta_opt"),
            ("turnover_um", "V turnover [micron]"), ("balmer_break_mag", "Balmer-break colour [mag]"),
            ("red_excess_mag", "red excess over UV [mag]"), ("mir_slope", "mid-IR slope alpha"),
            ("chi2_red", "reduced chi2 of the fit")]
    rows = "\n".join(f"| {label} | {d.get(key) if d.get(key) is not None else 'n/a'} |" for key, label in keys)
    verdict = {True: "**yes**", False: "no", None: "not classifiable"}[advice.is_lrd]
    if advice.lrd_score is not None:
        likeness = f", likeness {advice.lrd_likeness:.2f}" if advice.lrd_likeness is not None else ""
        verdict += f" (score {advice.lrd_score:.2f}{likeness}; agree: {', '.join(advice.lrd_votes) or 'none'})"
    crit = "\n".join(
        f"| {c['name']} ({c['paper']}) | {'yes' if c['passed'] else 'no' if c['passed'] is False else 'n/a'} | "
        + "; ".join(f"{t['term']} = {t['value']} ({t['threshold']})" for t in c["terms"]) + " |"
        for c in advice.criteria)
    return (f"### Diagnostics: {advice.source_id}, z = {advice.redshift}\n| quantity | value |\n|---|---|\n{rows}\n\n"
            f"**Little red dot:** {verdict}\n\n| criterion | passed | values (thresholds) |\n|---|---|---|\n{crit}\n\n"
            f"**Symptoms:** {', '.join(advice.symptoms) or 'none'}")


def actions_markdown(advice) -> str:
    """The ranked actions with their rules, confidences and papers for and against."""
    if not advice.actions:
        return "### Actions\nNo rule matches these symptoms."

    def papers(a) -> str:
        text = ", ".join(paper_link(p) for p in a.citations)
        if a.contradicted_by:
            text += (f"<br>**contested** by {', '.join(paper_link(p) for p in a.contradicted_by)}: "
                     f"{html.escape(a.dissent)}")
        return text

    rows = "\n".join(f"| {a.rank} | {html.escape(a.summary)} | `{a.rule_id}` | {a.confidence} | {papers(a)} |"
                     for a in advice.actions)
    interp = ", ".join(i["interpretation"] for i in advice.interpretations)
    return (f"### Ranked actions\n| # | action | rule | confidence | papers |\n|---|---|---|---|---|\n{rows}\n\n"
            f"**Points to:** {interp or 'no interpretation'}")
