"""Ingest: records from files, NASA ADS and arXiv into the index."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..settings import Settings
from ..types import first_problems


def ingest_files(settings: Settings, paths: Sequence[str | Path], scheduler: str | None = None):
    """Read JSONL/JSON/CSV records and ingest them; with ``scheduler`` embed on dask workers.

    Returns the :class:`~astrorag.ingest.pipeline.IngestReport`, read problems included. Raises
    :class:`InputError` (listing the first problems) when no record is readable.
    """
    from ..index.embedders import get_embedder
    from ..index.store import Index
    from ..ingest.pipeline import ingest_documents
    from ..ingest.records import read_files

    result = read_files([str(p) for p in paths])
    if not result.documents:
        raise InputError(f"no readable records in {', '.join(map(str, paths))}{first_problems(result.problems)}; "
                         f"nothing ingested")
    index = Index.open(settings, create=True)
    try:
        if scheduler:
            from ..cluster import dask_client

            with dask_client(scheduler) as client:
                report = ingest_documents(index, result.documents, None, settings, client=client)
        else:
            report = ingest_documents(index, result.documents, get_embedder(settings), settings)
    finally:
        index.close()
    report.problems, report.notes = result.problems, result.notes
    if not scheduler:  # dask workers embedded; this process has no torch model loaded to export from
        _leave_query_encoder(settings, report.notes)
    return report


def _leave_query_encoder(settings: Settings, notes: list[str]) -> None:
    """After a torch ingest, export the torch-free query encoder once (see index.embedders)."""
    from ..index.embedders import prepare_query_embedder

    if note := prepare_query_embedder(settings):
        notes.append(note)


def ingest_remote(settings: Settings, source: str, query: str = "", count: int = 100, *,
                  ids: Sequence[str] | None = None, sort: str | None = None, fulltext: bool = False):
    """Search ADS (``source="ads"``) or arXiv (``"arxiv"``) and ingest what comes back, resumably."""
    from ..index.embedders import get_embedder
    from ..index.store import Index

    source = source.lower()
    if source not in ("ads", "arxiv"):
        raise InputError(f"unknown literature source {source!r}; valid names: ads, arxiv")
    if not query and not ids:
        raise InputError("give a query (or arXiv ids)")
    if source == "ads":
        from ..ingest.ads_source import find_token

        find_token()  # no token: say so before an index is created (an empty default index would stay behind)
    index = Index.open(settings, create=True)
    try:
        if source == "ads":
            from ..ingest.ads_source import ingest_ads

            report = ingest_ads(query, index, get_embedder(settings), settings, rows=count, sort=sort)
        else:
            from ..ingest.arxiv_source import ingest_arxiv

            report = ingest_arxiv(query, index, get_embedder(settings), settings, max_results=count,
                                  fulltext=fulltext, id_list=list(ids) if ids else None)
    finally:
        index.close()
    _leave_query_encoder(settings, report.ingest.notes)
    return report
