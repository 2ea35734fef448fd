"""OpenAI-compatible backend (vLLM, llama.cpp's server, llama-cpp-python's server, Ollama's /v1): the real
``openai`` client, with what each kind of server says about itself.

Servers differ where it matters to a grounded answer: vLLM lists the context (``max_model_len``) with its
models; llama.cpp's ``llama-server`` reports ``n_ctx`` at ``/props`` and tokenizes at ``/tokenize``;
llama-cpp-python's server tokenizes at ``/extras/tokenize/count``, serves one request at a time, rejects
``json_schema`` response formats (it takes ``json_object`` with a ``schema``) and says its context only
when refusing a prompt beyond it (so astrorag sends it one oversized probe, refused before evaluation). :meth:`OpenAIBackend.server` finds out which it is, once.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import ContextOverflowError, LLMTimeoutError, LLMUnavailableError
from .base import DEFAULT_MAX_TOKENS, ContextSize, LLMBackend, TokenCount, Usage, letter_logprobs

T = TypeVar("T")
R = TypeVar("R")

JSON_MODES = ("auto", "json_schema", "json_object", "none")
#: tokens each chat message adds for its role markers when the server counts only the text
TEMPLATE_TOKENS_PER_MESSAGE = 8
#: The probe that makes llama-cpp-python's server say its context: longer than any context it is likely
#: to be started with, and a few hundred kilobytes to tokenize
PROBE_TOKENS = 140_000
_CONTEXT_IN_ERROR = re.compile(r"(?:maximum context length is|context window of|context size of)\s*(\d+)", re.IGNORECASE)


@dataclass
class ServerInfo:
    """What an OpenAI-compatible server told about itself."""

    kind: str  # "llama-cpp-python", "llama.cpp", "vllm" or "openai-compatible"
    models: list[str]
    n_ctx: int | None = None
    n_ctx_source: str = ""

    @property
    def serial(self) -> bool:
        """Whether it answers one request at a time (parallel requests only queue)."""
        return self.kind == "llama-cpp-python"


class OpenAIBackend(LLMBackend):
    """Chat completions against any OpenAI-compatible server; :meth:`map` runs requests in parallel.

    Parameters
    ----------
    base_url, model : str
        The server's ``/v1`` URL and the model to ask for. When the server serves exactly one model
        under another name, that one is used (with a notice) unless ``model_required``.
    num_ctx : int
        The context to assume when the server does not report one.
    json_mode : {"auto", "json_schema", "json_object", "none"}
        How JSON replies are asked for; ``auto`` picks what the detected server accepts.
    concurrency : int, optional
        Requests in flight for :meth:`map`; by default 1 for a server that serves one at a time, else 4.

    Examples
    --------
    >>> b = OpenAIBackend("http://127.0.0.1:9/v1", "astrosage", timeout=0.5)
    >>> b.available()[0]
    False
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, temperature: float = 0.2,
                 max_tokens: int = DEFAULT_MAX_TOKENS, timeout: float = 300.0, concurrency: int | None = None,
                 num_ctx: int = 8192, json_mode: str = "auto", model_required: bool = False):
        super().__init__()
        import openai

        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode {json_mode!r} is not one of {', '.join(JSON_MODES)}")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout
        self.num_ctx, self.json_mode, self.model_required = num_ctx, json_mode, model_required
        self._identity_checked = False
        self._concurrency = concurrency
        self._openai = openai
        # Local servers ignore the key; the client insists on one. No automatic retries: a refused request
        # fails the same way again, and retried timeouts multiply the wait before the message.
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "not-needed", timeout=timeout,
                                    max_retries=0)
        self._api_key = api_key
        self.usages: list[Usage] = []
        self._server: ServerInfo | None = None
        self._learned_ctx: int | None = None
        self.notices: list[str] = []
        self.logprob_notice = ""

    # ---- what the server is ---------------------------------------------------------------------

    @property
    def _root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def _request(self, method: str, path: str, timeout: float = 3.0, **kwargs):
        """A plain HTTP request to the server (its own endpoints: /props, /tokenize...), or None if it fails."""
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            return httpx.request(method, f"{self._root}{path}", headers=headers, timeout=timeout, **kwargs)
        except httpx.HTTPError:
            return None

    def _http(self, method: str, path: str, **kwargs) -> Any:
        """The JSON of a successful request, or None."""
        response = self._request(method, path, **kwargs)
        if response is None or response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def server(self) -> ServerInfo:
        """Find out, once, what kind of server this is, what it serves and its context size."""
        if self._server is not None:
            return self._server
        listing = self._http("GET", "/v1/models") or {}
        entries = listing.get("data") or []
        models = [str(m.get("id")) for m in entries if isinstance(m, dict)]
        info = ServerInfo("openai-compatible", models)
        max_len = next((m.get("max_model_len") for m in entries if isinstance(m, dict) and m.get("max_model_len")),
                       None)
        if isinstance(max_len, int):
            info.kind, info.n_ctx, info.n_ctx_source = "vllm", max_len, "reported by the server (max_model_len)"
        elif isinstance(props := self._http("GET", "/props"), dict):
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx") or props.get("n_ctx")
            info.kind = "llama.cpp"
            if isinstance(n_ctx, int):
                info.n_ctx, info.n_ctx_source = n_ctx, "reported by the server (/props)"
        elif self._http("POST", "/extras/tokenize/count", json={"input": "a", "model": self.model}) is not None:
            info.kind = "llama-cpp-python"
            if n_ctx := self._probe_context():
                info.n_ctx, info.n_ctx_source = n_ctx, "reported by the server (refusing an oversized probe)"
        self._server = info
        return info

    def _probe_context(self) -> int | None:
        """llama-cpp-python's server states its context only when refusing a prompt beyond it: send one
        (PROBE_TOKENS of one repeated word, tokenized and refused by the server, never evaluated) and read
        the size from the refusal."""
        reply = self._request("POST", "/v1/chat/completions", timeout=10.0,
                              json={"model": self.model, "max_tokens": 1,
                                    "messages": [{"role": "user", "content": "a " * PROBE_TOKENS}]})
        if reply is None:
            return None
        match = _CONTEXT_IN_ERROR.search(reply.text) if reply.status_code == 400 else None
        return int(match.group(1)) if match else None

    @property
    def concurrency(self) -> int:  # type: ignore[override]
        if self._concurrency:
            return self._concurrency
        return 1 if self._server is not None and self._server.serial else 4

    def available(self) -> tuple[bool, str]:
        try:
            ids = {m.id for m in self.client.with_options(timeout=3.0, max_retries=0).models.list()}
        except Exception:
            return False, f"no OpenAI-compatible server answers at {self.base_url}"
        if self.model not in ids:
            if len(ids) == 1 and not self.model_required:
                served = next(iter(ids))
                self.notices.append(f"notice: the server at {self.base_url} serves one model, {served!r}; using it "
                                    f"(ASTRORAG_OPENAI_MODEL / --openai-model was {self.model!r})")
                self.model = served
                return True, ""
            return False, (f"the server at {self.base_url} serves {', '.join(sorted(ids)) or 'no model'}, not "
                           f"{self.model} (choose one with --openai-model)")
        return True, ""

    def context_size(self) -> ContextSize:
        if self._learned_ctx:
            return ContextSize(self._learned_ctx, "reported by the server when a prompt overflowed it")
        info = self.server()
        if info.n_ctx:
            return ContextSize(info.n_ctx, info.n_ctx_source)
        return ContextSize(self.num_ctx, "the num_ctx setting (the server does not report its context)")

    def count_tokens(self, messages: list[dict]) -> TokenCount:
        info = self.server()
        text = "\n".join(str(m.get("content", "")) for m in messages)
        overhead = TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
        if info.kind == "llama-cpp-python":
            reply = self._http("POST", "/extras/tokenize/count", json={"input": text, "model": self.model})
            if isinstance(reply, dict) and isinstance(reply.get("count"), int):
                return TokenCount(reply["count"] + overhead, "the server's tokenizer", exact=True)
        elif info.kind == "llama.cpp":
            reply = self._http("POST", "/tokenize", json={"content": text})
            if isinstance(reply, dict) and isinstance(reply.get("tokens"), list):
                return TokenCount(len(reply["tokens"]) + overhead, "the server's tokenizer", exact=True)
        return super().count_tokens(messages)

    # ---- requests ---------------------------------------------------------------------------------

    def _response_format(self, format: dict | str | None) -> dict:
        if format is None or self.json_mode == "none":
            return {}
        mode = self.json_mode
        if mode == "auto":
            mode = "json_object" if self.server().kind in ("llama-cpp-python", "llama.cpp") else "json_schema"
        if isinstance(format, dict) and mode == "json_schema":
            return {"response_format": {"type": "json_schema",
                                        "json_schema": {"name": "answer", "schema": format, "strict": False}}}
        if isinstance(format, dict):
            return {"response_format": {"type": "json_object", "schema": format}}
        return {"response_format": {"type": "json_object"}}

    def _error(self, exc: Exception) -> LLMUnavailableError:
        """One message per way a request fails, naming the server's own words and the fix."""
        if isinstance(exc, self._openai.APITimeoutError):
            return LLMTimeoutError(
                f"the model at {self.base_url} is slow: no reply within {self.timeout:g} s. Raise the limit "
                f"(ASTRORAG_LLM_TIMEOUT_S or --timeout), lower --k or --max-tokens, or use a smaller model")
        if isinstance(exc, self._openai.APIConnectionError):
            return LLMUnavailableError(
                f"no OpenAI-compatible server answers at {self.base_url} ({exc.__class__.__name__}). Start one "
                f"(e.g. `python -m llama_cpp.server --model model.gguf --host 127.0.0.1`, `llama-server -m "
                f"model.gguf` or `vllm serve AstroMLab/AstroSage-8B`), set --openai-url / ASTRORAG_OPENAI_URL, or "
                f"use --backend llamacpp / ollama / extractive")
        if isinstance(exc, self._openai.NotFoundError):
            return LLMUnavailableError(f"the server at {self.base_url} has no model {self.model!r}: choose one "
                                       f"with --openai-model (ASTRORAG_OPENAI_MODEL)")
        if isinstance(exc, self._openai.APIStatusError):
            said = _server_message(exc)
            if (match := _CONTEXT_IN_ERROR.search(said)) or "context_length" in said:
                n_ctx = int(match.group(1)) if match else None
                if n_ctx:
                    self._learned_ctx = n_ctx
                return ContextOverflowError(
                    f"the prompt does not fit the model's context at {self.base_url} (the server says: {said}). "
                    f"Lower --k, or start the server with a larger context (--n_ctx / -c)", n_ctx)
            return LLMUnavailableError(f"the server at {self.base_url} refused the request (HTTP "
                                       f"{exc.status_code}: {said})")
        if isinstance(exc, self._openai.APIError):
            return LLMUnavailableError(f"the server at {self.base_url} broke off its reply ({exc}); see its log")
        raise exc

    def _create(self, messages: list[dict], **kwargs):
        client = self.client.with_options(max_retries=1) if getattr(self._local, "retry", False) else self.client
        return client.chat.completions.create(model=self.model, messages=messages, temperature=self.temperature,
                                              **kwargs)

    @contextlib.contextmanager
    def _retrying(self):
        self._local.retry = True
        try:
            yield
        finally:
            self._local.retry = False

    def served_identity(self) -> None:
        """Name the model the server really serves, once, before the first request: a server that serves one
        model under another name (llama-cpp-python answers to any name) would otherwise be recorded, in the
        JSON and the bundle, as the model that was asked for. A name the user chose is kept (a server without it
        refuses it); a default name the server does not list becomes the served one, with a notice."""
        if self._identity_checked:
            return
        self._identity_checked = True
        listing = self._http("GET", "/v1/models") or {}
        ids = sorted({m.get("id") for m in listing.get("data", []) if isinstance(m, dict) and m.get("id")})
        if ids and self.model not in ids and len(ids) == 1 and not self.model_required:
            served = ids[0]
            self.notices.append(f"notice: the server at {self.base_url} serves {served!r}, not {self.model!r}: "
                                f"the answer is {served!r}'s, and is recorded as such")
            self.model = served

    def chat(self, messages: list[dict], stream: bool = False, format: dict | str | None = None) -> Iterator[str]:
        self.served_identity()
        start = time.perf_counter()
        extra = self._response_format(format)
        max_tokens = self.reply_tokens()
        try:
            try:
                response = self._create(messages, max_tokens=max_tokens, stream=stream, **extra) if stream \
                    else self._create(messages, max_tokens=max_tokens, **extra)
            except self._openai.APIStatusError as exc:
                if extra.get("response_format", {}).get("type") != "json_schema" or self.json_mode != "auto" \
                        or exc.status_code not in (400, 422, 500):
                    raise
                # A server that rejects json_schema may take json_object with a schema (llama-cpp-python)
                extra = {"response_format": {"type": "json_object", "schema": format}}
                self.json_mode = "json_object"
                response = self._create(messages, max_tokens=max_tokens, stream=stream, **extra)
            if not stream:
                usage, choice = response.usage, response.choices[0]
                self._record(Usage(usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
                                   time.perf_counter() - start, finish_reason=choice.finish_reason))
                yield choice.message.content or ""
                return
            first = finish = prompt = output = None
            pieces = 0
            broken: list[Exception] = []
            try:
                for chunk in self._chunks(response, broken):
                    if chunk.choices:
                        choice = chunk.choices[0]
                        if choice.delta and choice.delta.content:
                            first = first or time.perf_counter() - start
                            pieces += 1
                            yield choice.delta.content
                        finish = choice.finish_reason or finish
                    if getattr(chunk, "usage", None):
                        prompt, output = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
            finally:
                response.close()
                self._record(Usage(prompt, output if output is not None else pieces, time.perf_counter() - start,
                                   finish_reason=finish, first_token_s=first,
                                   extra={} if output is not None else {"output_tokens": "stream pieces"}))
            if not pieces and finish is None:
                # The stream ended without a word or a reason (llama-cpp-python's server fails a streamed
                # request this way, e.g. on a prompt beyond its context): ask once more without streaming,
                # which returns the reply or the server's error.
                # The broken stream may leave its pooled connection reset: one retry covers that.
                with self._retrying():
                    yield from self.chat(messages, stream=False, format=format)
            elif broken:
                raise LLMUnavailableError(f"the server at {self.base_url} broke off its reply after {pieces} "
                                          f"piece(s) ({broken[0].__class__.__name__}); see its log")
        except self._openai.OpenAIError as exc:
            raise self._error(exc) from exc

    def _chunks(self, response, broken: list[Exception]):
        """The stream's chunks; a connection that breaks mid-stream ends it (``broken`` gets the error)."""
        try:
            yield from response
        except self._openai.APIConnectionError as exc:
            broken.append(exc)
        except Exception as exc:  # the transport's own errors (httpx's, under the name openai vendors)
            if "httpx" not in exc.__class__.__module__:
                raise
            broken.append(exc)

    def option_logprobs(self, messages: list[dict], letters: str) -> list[float] | None:
        """The first reply token's log-probabilities per option letter (``logprobs`` + ``top_logprobs``)."""
        try:
            response = self._create(messages, max_tokens=1, logprobs=True, top_logprobs=20)
        except self._openai.APIStatusError as exc:
            self.logprob_notice = (f"the server gives no log-probabilities ({_server_message(exc)[:160]}); for "
                                   f"llama-cpp-python start it with --logits_all true")
            return None
        except self._openai.OpenAIError as exc:
            raise self._error(exc) from exc
        logprobs = response.choices[0].logprobs if response.choices else None
        content = getattr(logprobs, "content", None) or []
        if not content:
            self.logprob_notice = "the server returned no log-probabilities"
            return None
        return letter_logprobs({c.token: c.logprob for c in (content[0].top_logprobs or [])}, letters)

    def _record(self, usage: Usage) -> None:
        self.last_usage = usage
        self.usages.append(usage)

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run ``func`` over items with up to ``concurrency`` requests in flight (order kept)."""
        self.server()
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(func, items))


def _server_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:400]
    return str(getattr(exc, "message", exc))[:400]
