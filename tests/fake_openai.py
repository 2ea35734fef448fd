"""A loopback server speaking the OpenAI chat-completions API (what vLLM and llama.cpp serve).

It records the largest number of requests in flight at once, so tests can see parallel batches.
"""

from __future__ import annotations

import json
import threading
import time

from loopback import LoopbackServer, QuietHandler


class FakeOpenAI(LoopbackServer):
    def __init__(self, model: str = "astrosage", reply="Raise E_BV_lines first [R1].", delay_s: float = 0.0,
                 reject_json_schema: bool = False, n_ctx: int | None = None):
        self.model, self.reply, self.delay_s = model, reply, delay_s
        # like llama-cpp-python's server: a prompt (in words here) beyond n_ctx breaks a streamed reply
        # off without a word and gets HTTP 400 naming the context when not streamed
        self.n_ctx = n_ctx
        # llama-cpp-python's server answers response_format json_schema with HTTP 500
        self.reject_json_schema = reject_json_schema
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(QuietHandler):
            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.endswith("/models"):
                    return self._json(200, {"object": "list", "data": [
                        {"id": owner.model, "object": "model", "created": 1700000000, "owned_by": "vllm"}]})
                self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": "not found"}})
                with owner._lock:
                    owner.requests.append(body)
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    time.sleep(owner.delay_s)
                    if owner.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
                        return self._json(500, {"error": {"message": "Internal Server Error"}})
                    if body.get("model") != owner.model:
                        return self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
                    prompt = sum(len(m["content"].split()) for m in body["messages"])
                    if owner.n_ctx and prompt >= owner.n_ctx:
                        if body.get("stream"):
                            self.send_response(200)
                            self.send_header("Content-Type", "text/event-stream")
                            self.end_headers()
                            return  # the stream ends with no event at all
                        return self._json(400, {"error": {"message": f"This model's maximum context length is "
                                                          f"{owner.n_ctx} tokens. However, you requested {prompt} "
                                                          f"tokens", "code": "context_length_exceeded"}})
                    text = owner.reply(body) if callable(owner.reply) else owner.reply
                    usage = {"prompt_tokens": prompt, "completion_tokens": len(text.split()),
                             "total_tokens": prompt + len(text.split())}
                    if body.get("stream"):
                        self.send_response(200)
                        self.send_header("Content-Type", "text/event-stream")
                        self.end_headers()
                        for word in text.split(" "):
                            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": owner.model,
                                     "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        last = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": owner.model,
                                "choices": [], "usage": usage}
                        self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                        return
                    self._json(200, {"id": "c1", "object": "chat.completion", "created": 1, "model": owner.model,
                                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                  "finish_reason": "stop"}], "usage": usage})
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

        super().__init__(Handler, "/v1")

