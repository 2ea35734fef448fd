"""arXiv search through the ``arxiv`` package: at most one request per 3 s, resumable, optional full text."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from ..errors import SourceError
from ..index.embed import Embedder
from ..index.store import Index
from ..index.types import Document
from ..settings import Settings
from .ads_source import SourceReport, checkpoint_key
from .pipeline import ingest_documents


def result_to_document(result, body: str = "") -> Document:
    """An ``arxiv.Result`` as a Document."""
    return Document.create(
        title=result.title, abstract=result.summary or "", body=body,
        authors=[a.name for a in result.authors], year=result.published.year if result.published else None,
        arxiv_id=result.entry_id, doi=result.doi, categories=list(result.categories or []), source="arxiv",
        published=result.published.isoformat() if result.published else None)


def make_client(settings: Settings):
    import arxiv

    sources = settings.sources
    client = arxiv.Client(page_size=sources.arxiv_page_size, delay_seconds=max(sources.arxiv_delay_s, 0.0),
                          num_retries=sources.http_retries)
    client.query_url_format = settings.sources.arxiv_url.rstrip("?") + "?{}"  # mirrors and tests point elsewhere
    return client


def ingest_arxiv(query: str, index: Index, embedder: Embedder, settings: Settings, max_results: int = 100,
                 fulltext: bool = False, fetch_pdf: Callable[[str], bytes] | None = None,
                 id_list: list[str] | None = None) -> SourceReport:
    """Search arXiv and ingest the results in pages, checkpointing how many were stored."""
    import arxiv
    from tqdm.auto import tqdm

    from .fulltext import pdf_to_body

    key = checkpoint_key("arxiv", query, ",".join(id_list or []), str(max_results), str(fulltext))
    state = json.loads(index.get_meta(key) or '{"offset": 0, "done": false}')
    if state["done"]:  # a finished query runs again from the start; unchanged papers cost a hash lookup
        state = {"offset": 0, "done": False}
    report = SourceReport(fetched=state["offset"])
    client = make_client(settings)
    search = arxiv.Search(query=query, id_list=id_list or [], max_results=max_results)
    bar = tqdm(total=max_results, initial=state["offset"], unit="rec", desc="arXiv", disable=not settings.progress,
               file=sys.stderr)
    batch: list[Document] = []
    try:
        results = client.results(search, offset=state["offset"])
        for result in results:
            body = ""
            if fulltext:
                try:
                    body = pdf_to_body((fetch_pdf or _download)(result.pdf_url))
                except Exception as exc:  # a bad PDF must not stop the ingest; report it and keep the abstract
                    report.ingest.problems.append(_problem(result, exc))
                    print(f"skipped full text of {result.entry_id}: {exc.__class__.__name__}: {exc}",
                          file=sys.stderr)
            batch.append(result_to_document(result, body))
            if len(batch) >= settings.sources.arxiv_page_size:
                _flush(batch, index, embedder, settings, report, state, key)
                bar.update(len(batch))
                batch = []
        _flush(batch, index, embedder, settings, report, state, key)
        bar.update(len(batch))
        state["done"] = True
        index.set_meta(key, json.dumps(state))
    except arxiv.HTTPError as exc:
        raise SourceError(f"arXiv answered HTTP {exc.status} for {query or id_list!r} after {exc.retry + 1} "
                          f"tries: {_error_hint(exc.status)}") from None
    except arxiv.UnexpectedEmptyPageError:
        raise SourceError(f"arXiv returned an empty page at offset {state['offset']} for {query!r}; the API does "
                          f"this under load: run the same command again to resume") from None
    except OSError as exc:
        raise SourceError(f"cannot reach arXiv at {settings.sources.arxiv_url} ({exc.__class__.__name__}); check the "
                          f"network or ASTRORAG_ARXIV_URL") from None
    finally:
        bar.close()
    return report


def _flush(batch, index, embedder, settings, report, state, key) -> None:
    report.ingest += ingest_documents(index, batch, embedder, settings, progress=False)
    state["offset"] += len(batch)
    report.fetched = state["offset"]
    report.pages += 1 if batch else 0
    index.set_meta(key, json.dumps(state))


def _error_hint(status: int) -> str:
    if status == 400:
        return "the query is malformed (see https://info.arxiv.org/help/api/user-manual.html for its syntax)"
    if status in (429, 503):
        return "arXiv is rate limiting; wait a minute and run the same command again to resume"
    return "see the arXiv API status page"


def _download(url: str) -> bytes:
    import requests

    response = requests.get(url, timeout=60, headers={"User-Agent": "astrorag (research assistant)"})
    response.raise_for_status()
    return response.content


def _problem(result, exc):
    from ..types import Problem

    return Problem(result.entry_id, 0, f"full text skipped: {exc.__class__.__name__}: {exc}")
