"""NASA ADS search through the ``ads`` package: cursor pages, retries, rate limits, resumable.

The token comes from ADS_API_TOKEN or ADS_DEV_KEY (or ~/.ads/token); it is sent only in the
Authorization header and never printed or logged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..errors import SourceError
from ..index.embed import Embedder
from ..index.store import Index
from ..settings import Settings
from .pipeline import IngestReport, ingest_documents
from .records import _from_ads

FIELDS = ["bibcode", "title", "author", "abstract", "year", "pub", "doi", "identifier", "citation_count",
          "keyword", "pubdate"]
TOKEN_VARS = ("ADS_API_TOKEN", "ADS_DEV_KEY")


def find_token() -> str:
    for var in TOKEN_VARS:
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    for path in (Path.home() / ".ads" / "token", Path.home() / ".ads" / "dev_key"):
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
    raise SourceError("no NASA ADS API token: set ADS_API_TOKEN (or ADS_DEV_KEY) to a token from "
                      "https://ui.adsabs.harvard.edu/user/settings/token, or write it to ~/.ads/token")


@dataclass
class SourceReport:
    fetched: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    remaining: int | None = None
    stopped_early: str = ""
    ingest: IngestReport = field(default_factory=IngestReport)

    def summary(self) -> str:
        text = (f"{self.fetched} records in {self.pages} pages ({self.requests} requests, {self.retries} retries); "
                f"{self.ingest.summary()}")
        if self.remaining is not None:
            text += f"; ADS requests remaining today: {self.remaining}"
        if self.stopped_early:
            text += f"; stopped early: {self.stopped_early}"
        return text


def redact(text: str, token: str) -> str:
    """The text with the token (and any Bearer credential) replaced by ***, for every message we show.

    >>> redact("401: Authorization: Bearer abc123 refused for abc123", "abc123")
    '401: Authorization: Bearer *** refused for ***'
    """
    text = text.replace(token, "***") if token else text
    return re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1***", text)


def check_ads_url(settings: Settings) -> None:
    """Refuse to send the token over plain http, except to this machine or when explicitly allowed."""
    url = urlparse(settings.sources.ads_url)
    if url.scheme == "https" or settings.sources.ads_allow_http:
        return
    if url.scheme == "http" and (url.hostname in ("localhost", "::1") or (url.hostname or "").startswith("127.")):
        return
    raise SourceError(f"refusing to send the ADS token to {settings.sources.ads_url}: use an https:// URL (or a "
                      f"loopback mirror); set ASTRORAG_ADS_ALLOW_HTTP=1 only for a trusted network")


def checkpoint_key(kind: str, *parts: str) -> str:
    return f"{kind}:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _mount_retries(session, settings: Settings) -> None:
    """Retries by urllib3 on the ads package's requests session: 429 and 5xx (honouring Retry-After) with
    exponential backoff from ``http_backoff_s``; a connection that cannot be made is tried once more after
    ``http_connect_timeout_s``, so an offline machine hears so in seconds, not after a minute of backoff."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    connect = settings.sources.http_connect_timeout_s

    class ConnectTimeoutAdapter(HTTPAdapter):
        def send(self, request, **kwargs):
            timeout = kwargs.get("timeout")
            read = timeout[1] if isinstance(timeout, tuple) else timeout
            kwargs["timeout"] = (connect, read or 60.0)
            return super().send(request, **kwargs)

    retry = Retry(total=settings.sources.http_retries, connect=min(1, settings.sources.http_retries),
                  backoff_factor=settings.sources.http_backoff_s,
                  status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None,
                  respect_retry_after_header=True, raise_on_status=False)
    adapter = ConnectTimeoutAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


def ingest_ads(query: str, index: Index, embedder: Embedder, settings: Settings, rows: int = 200,
               sort: str | None = None) -> SourceReport:
    """Fetch up to ``rows`` records for an ADS query and ingest them page by page, checkpointing the cursor."""
    import ads
    import ads.exceptions
    from tqdm.auto import tqdm

    token = find_token()
    check_ads_url(settings)
    key = checkpoint_key("ads", query, sort or "", str(rows))
    state = json.loads(index.get_meta(key) or '{"cursor": "*", "fetched": 0, "done": false}')
    if state["done"]:  # a finished query runs again from the start: new papers, fresh citation counts
        state = {"cursor": "*", "fetched": 0, "done": False}
    report = SourceReport(fetched=state["fetched"])
    bar = tqdm(total=rows, initial=state["fetched"], unit="rec", desc="ADS", disable=not settings.progress,
               file=sys.stderr)
    while state["fetched"] < rows:
        page_rows = min(settings.sources.ads_page_size, rows - state["fetched"])
        search = ads.SearchQuery(q=query, fl=FIELDS, rows=page_rows, sort=sort, cursorMark=state["cursor"],
                                 max_pages=1, token=token)
        search.HTTP_ENDPOINT = settings.sources.ads_url.rstrip("/") + "/search/query"
        last: dict = {}
        search.session.hooks["response"].append(lambda r, *a, _last=last, **k: _last.update(
            status=r.status_code, headers=r.headers, retries=len(getattr(r.raw, "retries", None).history)
            if getattr(getattr(r, "raw", None), "retries", None) is not None else 0))
        _mount_retries(search.session, settings)
        report.requests += 1
        try:
            search.execute()
        except ads.exceptions.APIResponseError as exc:
            report.retries += last.get("retries", 0)
            status = last.get("status")
            hint = {401: "the token was refused: check ADS_API_TOKEN",
                    429: "ADS rate limit: try again after the daily reset"}.get(status, "")
            raise SourceError(redact(f"ADS answered HTTP {status} for {query!r}{': ' + hint if hint else ''} "
                                     f"({str(exc)[:200]})", token)) from None
        except OSError as exc:  # connection refused, DNS, timeouts, after the retries
            raise SourceError(redact(f"cannot reach ADS at {settings.sources.ads_url} ({exc.__class__.__name__}, "
                                     f"two tries of {settings.sources.http_connect_timeout_s:g} s); check the "
                                     "network or ASTRORAG_ADS_URL, and try again later", token)) from None
        report.retries += last.get("retries", 0)
        docs = [_from_ads(dict(a._raw)) for a in search.response.articles if a._raw.get("bibcode")]
        report.ingest += ingest_documents(index, docs, embedder, settings, progress=False)
        report.pages += 1
        headers = last.get("headers") or {}
        if headers.get("X-RateLimit-Remaining", "").isdigit():
            report.remaining = int(headers["X-RateLimit-Remaining"])
        next_cursor = search.response.json.get("nextCursorMark")
        state["fetched"] += len(docs)
        report.fetched = state["fetched"]
        total = int(search.response.numFound)
        finished = (not docs or next_cursor in (None, state["cursor"]) or state["fetched"] >= min(rows, total))
        state.update(cursor=next_cursor or state["cursor"], done=finished)
        index.set_meta(key, json.dumps(state))  # after the page is stored: a kill here re-fetches, no duplicates
        bar.update(len(docs))
        if finished:
            break
        if report.remaining is not None and report.remaining <= settings.sources.ads_min_remaining:
            report.stopped_early = (f"only {report.remaining} ADS requests remain today (keeping "
                                    f"{settings.sources.ads_min_remaining} in reserve); run the same command after the "
                                    f"daily reset to continue from the checkpoint")
            break
    bar.close()
    return report
