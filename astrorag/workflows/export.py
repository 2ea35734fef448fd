"""BibTeX of the papers a query retrieves, an answer bundle cites, or a list of ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..settings import Settings


def export_bibtex(settings: Settings, *, query: str | None = None, bundle: str | Path | None = None,
                  ids: Sequence[str] = (), k: int | None = None, out: str | Path | None = None) -> tuple[str, int]:
    """BibTeX for the papers a query retrieves, an answer bundle cites, or a list of ids; (text, entries).

    With ``out`` the text is also written there (atomically; its folder must exist).
    """
    if out is not None and not Path(out).parent.is_dir():
        raise InputError(f"--out {out}: the folder {Path(out).parent} does not exist; create it first")
    text, count = _export(settings, query, bundle, ids, k)
    if out is not None:
        from ..files import write_atomically

        write_atomically(Path(out), text)
    return text, count


def _export(settings: Settings, query: str | None, bundle: str | Path | None, ids: Sequence[str],
            k: int | None) -> tuple[str, int]:
    from ..bibtex import bibtex
    from ..index.store import Index
    from ..index.types import QueryParams
    from ..types import normalize_arxiv_id

    chosen = [bool(query), bool(bundle), bool(ids)]
    if sum(chosen) != 1:
        raise InputError("give exactly one of --query, --bundle or --ids")
    if query:
        from ..assistant import Assistant

        assistant = Assistant(settings, backend="extractive")
        try:
            evidence = assistant.retrieve(query, QueryParams(k=k, graph_rules=0))
            wanted = list(dict.fromkeys(e.doc_id for e in evidence if e.kind == "chunk" and e.doc_id))
            docs = assistant.index.documents(wanted)
        finally:
            assistant.close()
    else:
        if bundle:
            from ..bundle import load_bundle

            data = load_bundle(bundle)
            cited = set(data["citations"])
            wanted = list(dict.fromkeys(e["doc_id"] for e in data["evidence"]
                                        if e.get("kind") == "chunk" and e.get("key") in cited and e.get("doc_id")))
        else:
            wanted = [normalize_arxiv_id(i) or i.strip() for i in ids]
        index = Index.open(settings)
        try:
            docs = index.documents(wanted)
            if ids and len(docs) < len(wanted):
                # a paper indexed under its arXiv id may be asked for by bibcode (or the other way round)
                for doc in index.documents().values():
                    if doc.doc_id not in docs and (doc.bibcode in wanted or doc.arxiv_id in wanted):
                        docs[doc.doc_id] = doc
        finally:
            index.close()
    ordered = [docs[i] for i in wanted if i in docs] + [d for i, d in docs.items() if i not in wanted]
    if not ordered:
        raise InputError("no indexed paper matches: check the ids, or ingest the papers first")
    return bibtex(ordered), len(ordered)
