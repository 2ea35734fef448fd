"""A loopback HTTP server that speaks the parts of Ollama's REST API astrorag uses.

It is a contract test of our client code through the real ``ollama`` package: the message
shapes follow Ollama's API documentation (/api/version, /api/tags, /api/show, /api/chat with
streaming NDJSON and without).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from loopback import LoopbackServer, QuietHandler

CREATED = "2025-06-01T12:00:00.000000Z"


class FakeOllama(LoopbackServer):
    def __init__(self, models=("astrosage",), reply: Callable[[dict], str] | str = "ok [1]", logprobs=None):
        self.models = list(models)
        self.reply = reply
        self.logprobs = logprobs  # body -> [(token, logprob), ...] when the request asks for logprobs
        self.requests: list[tuple[str, dict]] = []
        owner = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: dict | None = None, lines: list[dict] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/x-ndjson" if lines else "application/json")
                self.end_headers()
                if lines:
                    try:
                        for line in lines:
                            self.wfile.write((json.dumps(line) + "\n").encode())
                            self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client stopped reading (as astrorag does on a degenerate reply)
                else:
                    self.wfile.write(json.dumps(body).encode())

            def do_GET(self):
                owner.requests.append((self.path, {}))
                if self.path == "/api/version":
                    self._send(200, {"version": "0.12.6"})
                elif self.path == "/api/tags":
                    self._send(200, {"models": [
                        {"name": m, "model": m, "modified_at": CREATED, "size": 8_540_000_000,
                         "digest": "a" * 64, "details": {"format": "gguf", "family": "llama",
                                                          "parameter_size": "8.0B", "quantization_level": "Q8_0"}}
                        for m in owner.models]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append((self.path, body))
                model = body.get("model", "")
                if ":" not in model and f"{model}:latest" in owner.models:
                    model = f"{model}:latest"  # Ollama resolves an untagged name to :latest
                if self.path == "/api/show":
                    if model not in owner.models:
                        return self._send(404, {"error": f"model '{model}' not found"})
                    return self._send(200, {"modelfile": "", "parameters": "num_ctx 8192",
                                            "template": "{{ .Prompt }}", "details": {"family": "llama"}})
                if self.path != "/api/chat":
                    return self._send(404, {"error": "not found"})
                if model not in owner.models:
                    return self._send(404, {"error": f"model '{model}' not found, try pulling it first"})
                text = owner.reply(body) if callable(owner.reply) else owner.reply
                if body.get("logprobs") and owner.logprobs is not None:
                    letters = owner.logprobs(body)
                    top = [{"token": t, "logprob": lp} for t, lp in letters]
                    return self._send(200, {"model": model, "created_at": CREATED, "done": True,
                                            "done_reason": "length", "message": {"role": "assistant",
                                                                                 "content": top[0]["token"]},
                                            "logprobs": [{"token": top[0]["token"], "logprob": top[0]["logprob"],
                                                          "top_logprobs": top}]})
                final = {"model": model, "created_at": CREATED, "message": {"role": "assistant", "content": ""},
                         "done": True, "done_reason": "stop", "total_duration": 1_000_000,
                         "prompt_eval_count": sum(len(m["content"].split()) for m in body["messages"]),
                         "eval_count": len(text.split())}
                if body.get("stream", True):
                    words = text.split(" ")
                    lines = [{"model": model, "created_at": CREATED, "done": False,
                              "message": {"role": "assistant", "content": w + (" " if i < len(words) - 1 else "")}}
                             for i, w in enumerate(words)]
                    self._send(200, lines=lines + [final])
                else:
                    final["message"]["content"] = text
                    self._send(200, final)

        super().__init__(Handler)


    def chats(self) -> list[dict]:
        return [body for path, body in self.requests if path == "/api/chat"]
