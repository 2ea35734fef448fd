"""An answer's sources: a block of text for the terminal, markdown with links for the app."""

from __future__ import annotations

import html
import re

from ..index.types import Answer, Evidence
from ..types import normalize_arxiv_id
from .tex import plain_tex


def paper_link(ident: str) -> str:
    """A markdown link to a paper: its arXiv page for an arXiv id, else its ADS page.

    >>> paper_link("2401.09981"), paper_link("2024ApJ...963..128K")
    ('[arXiv:2401.09981](https://arxiv.org/abs/2401.09981)', '[2024ApJ...963..128K](https://ui.adsabs.harvard.edu/abs/2024ApJ...963..128K)')
    """
    arxiv = normalize_arxiv_id(ident)
    if arxiv:
        return f"[arXiv:{arxiv}](https://arxiv.org/abs/{arxiv})"
    return f"[{ident}](https://ui.adsabs.harvard.edu/abs/{ident})"


def link_citations(text: str, evidence: list[Evidence]) -> str:
    """Turn [1] into a link to the paper's page; rule keys stay plain (their papers are in the sources panel).

    >>> ev = [Evidence(key="1", kind="chunk", text="t", url="https://arxiv.org/abs/2401.09981")]
    >>> link_citations("AGN [1].", ev)
    'AGN [[1](https://arxiv.org/abs/2401.09981)].'
    """
    urls = {e.key: e.url for e in evidence if e.url}

    def repl(m: re.Match) -> str:
        keys = [k.strip() for k in m.group(1).split(",")]
        parts = [f"[{k}]({urls[k]})" if k in urls else k for k in keys]
        return "[" + ", ".join(parts) + "]"

    return re.sub(r"\[((?:R?\d{1,3})(?:\s*,\s*R?\d{1,3})*)\]", repl, text)


def sources_markdown(answer: Answer) -> str:
    """Every retrieved source, cited or not: papers with their passage, rules with their papers for and against."""
    if not answer.evidence:
        return "_No sources retrieved._"
    cited = {e.key for e in answer.citations}
    lines = []
    for ev in answer.evidence:
        mark = "**cited**" if ev.key in cited else "retrieved"
        if ev.kind == "rule":
            papers = ", ".join(paper_link(p) for p in ev.papers)
            contested = ""
            if ev.papers_against:
                against = ", ".join(paper_link(p) for p in ev.papers_against)
                contested = f"  \n**contested** by {against}: {html.escape(ev.dissent)}"
            lines.append(f"**[{ev.key}] rule `{ev.rule_id}`** ({mark})  \n{html.escape(ev.title)}  \n"
                         f"papers for: {papers}{contested}")
        else:
            authors = ", ".join(ev.authors[:3]) + (" et al." if len(ev.authors) > 3 else "")
            title = f"[{html.escape(ev.title)}]({ev.url})" if ev.url else html.escape(ev.title)
            passage = html.escape(ev.text[:600]) + ("..." if len(ev.text) > 600 else "")
            # Only what the record has: no "authors n/a" or "n.d." placeholders.
            facts = [authors, str(ev.year) if ev.year else "", ev.venue or "",
                     f"cited {ev.citation_count}x" if ev.citation_count is not None else "",
                     ev.arxiv_id or ev.bibcode or ev.doc_id or ""]
            lines.append(f"**[{ev.key}]** {title} ({mark})  \n{' · '.join(f for f in facts if f)}  \n> {passage}")
    return "\n\n".join(lines)


def sources_text(answer: Answer) -> str:
    """The cited sources for the terminal: one line per paper with all its passages' keys, rules with their
    papers (and the papers against); empty when nothing is cited."""
    if not answer.citations:
        return ""
    by_paper: dict[str, list[Evidence]] = {}
    for ev in answer.citations:
        if ev.kind != "rule":
            by_paper.setdefault(ev.doc_id or ev.key, []).append(ev)
    lines = ["Sources:"]
    for ev in answer.citations:
        if ev.kind == "rule":
            papers = ", ".join(f"arXiv:{p}" if normalize_arxiv_id(p) else p for p in ev.papers)
            lines.append(f"  [{ev.key}] rule {ev.rule_id}: {plain_tex(ev.title)}\n       papers: {papers}")
            if ev.papers_against:
                lines.append(f"       CONTESTED by {', '.join(ev.papers_against)}: {plain_tex(ev.dissent)}")
        elif by_paper.get(ev.doc_id or ev.key, [None])[0] is ev:
            keys = ", ".join(e.key for e in by_paper[ev.doc_id or ev.key])
            lines.append(f"  [{keys}] {ev.label} {plain_tex(ev.title)}\n       {ev.url or ''}")
    return "\n".join(lines)


def library_markdown(info: dict) -> str:
    """An index's summary (``workflows.library_summary``) as a one-row table."""
    return (f"| index | documents | chunks | rules | embedding model | fingerprint |\n|---|---|---|---|---|---|\n"
            f"| {info['name']} | {info['documents']} | {info['chunks']} | {info['rules']} | "
            f"{info['embedding_model']} | `{info['fingerprint']}` |")


def passages_brief(evidence: list[Evidence]) -> list[dict]:
    """Retrieved passages as an agent reads them (the MCP tools): ids, title, year, text and fused score."""
    return [{"key": e.key, "title": e.title, "arxiv_id": e.arxiv_id, "bibcode": e.bibcode, "year": e.year,
             "url": e.url, "text": e.text, "score": round(float(e.fused_score), 4)} for e in evidence]


def answer_brief(answer: Answer) -> dict:
    """An answer as an agent reads it (the MCP tools): the text, its citations' ids, whether the corpus had
    evidence, and the notices; the full record is ``answer.to_dict()``."""
    return {"answer": answer.text, "no_evidence": answer.no_evidence, "backend": answer.backend,
            "citations": [{"key": e.key, "kind": e.kind, "title": e.title, "arxiv_id": e.arxiv_id,
                           "bibcode": e.bibcode, "rule_id": e.rule_id, "url": e.url} for e in answer.citations],
            "notices": answer.notices}
