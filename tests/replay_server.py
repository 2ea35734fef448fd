"""Loopback HTTP servers that replay real recorded ADS and arXiv responses to the real clients.

ADS: the recorded search response (28 real records) is served page by page with cursor marks, the
way the ADS API pages; an Authorization header is required; X-RateLimit-Remaining counts down; a
queue of injected HTTP statuses (429, 503...) can precede the real answer.
arXiv: each recorded response is served for the query parameters it was recorded with.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer, QuietHandler

DATA = Path(__file__).parent / "data"


class Replay(LoopbackServer):
    def __init__(self, rate_limit: int = 5000, fail_with: list[int] | None = None, delay_s: float = 0.0,
                 echo_auth: int | None = None):
        self.ads_docs = json.loads((DATA / "ads_solr_response.json").read_text())["response"]["docs"]
        self.arxiv = {}
        for path in sorted((DATA / "arxiv").glob("*.json")):
            rec = json.loads(path.read_text())
            self.arxiv[self._arxiv_key(parse_qs(urlparse(rec["url"]).query))] = rec
        self.remaining = rate_limit
        self.fail_with = list(fail_with or [])
        self.delay_s = delay_s
        self.echo_auth = echo_auth  # answer with this status and the request's Authorization header in the body
        self.requests: list[tuple[str, dict, dict]] = []
        owner = self

        class Handler(QuietHandler):
            def _send(self, status, body: bytes, ctype="application/json", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlparse(self.path)
                # Repeated parameters (the ads client sends fl=id&fl=bibcode&...) are joined with commas.
                params = {k: ",".join(v) for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                owner.requests.append((url.path, params, dict(self.headers)))
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                if owner.echo_auth:  # a misbehaving proxy that echoes the credentials in its error page
                    return self._send(owner.echo_auth, json.dumps({"error": "bad request", "headers": {
                        "Authorization": self.headers.get("Authorization", "")}}).encode())
                if owner.fail_with:
                    status = owner.fail_with.pop(0)
                    return self._send(status, json.dumps({"error": f"injected {status}"}).encode(),
                                      headers={"Retry-After": "0"})
                if url.path.endswith("/search/query"):
                    return owner._ads(self, params)
                if url.path.endswith("/api/query"):
                    return owner._arxiv(self, params)
                self._send(404, b'{"error": "not found"}')

        super().__init__(Handler)

    @staticmethod
    def _arxiv_key(params) -> tuple:
        get = lambda k: (params.get(k) or [""])[0] if isinstance(params.get(k), list) else params.get(k, "")
        query = get("search_query").removeprefix("all:")
        return (query, get("id_list"), get("start") or "0", get("max_results"))

    def _ads(self, handler, params):
        if not handler.headers.get("Authorization", "").startswith("Bearer ") or \
                handler.headers["Authorization"] == "Bearer None":
            return handler._send(401, b'{"error": "Unauthorized"}')
        self.remaining -= 1
        rows = int(params.get("rows", 10))
        cursor = params.get("cursorMark", "*")
        start = 0 if cursor == "*" else int(cursor.removeprefix("c"))
        docs = self.ads_docs[start:start + rows]
        nxt = f"c{start + len(docs)}" if docs else cursor
        body = {"responseHeader": {"status": 0, "QTime": 3, "params": {"q": params.get("q", ""), "rows": str(rows),
                                                                      "fl": params.get("fl", ""), "wt": "json"}},
                "response": {"numFound": len(self.ads_docs), "start": start, "docs": docs},
                "nextCursorMark": nxt}
        handler._send(200, json.dumps(body).encode(),
                      headers={"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(self.remaining),
                               "X-RateLimit-Reset": "1764115200"})

    def _arxiv(self, handler, params):
        key = self._arxiv_key(params)
        rec = self.arxiv.get(key)
        if rec is None:
            return handler._send(500, f"no recording for {key}".encode(), "text/plain")
        handler._send(rec["status_code"], rec["body"].encode(), "application/atom+xml")

