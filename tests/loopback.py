"""One loopback HTTP server for the tests' fake services (Ollama, OpenAI-compatible, ADS/arXiv replay).

Each fake defines a request handler (a :class:`QuietHandler`) and serves it with :class:`LoopbackServer` on
127.0.0.1 at a free port, in a thread, as a context manager.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, *args):
        pass


class LoopbackServer:
    """Serve ``handler`` on 127.0.0.1; ``url`` is its base URL (plus ``path``)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = ""):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
