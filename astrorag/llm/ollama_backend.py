"""Ollama backend: the real ``ollama`` client against a local or remote Ollama server."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..errors import LLMTimeoutError, LLMUnavailableError
from .base import DEFAULT_MAX_TOKENS, ContextSize, LLMBackend, Usage, letter_logprobs


class OllamaBackend(LLMBackend):
    """Chat with a model served by Ollama (AstroSage-8B by default).

    ``num_ctx`` is always sent: Ollama's default context is too small for quoted evidence. So the context
    is ours to choose, and the prompt is fitted to it; ``max_tokens`` goes as ``num_predict``.

    Examples
    --------
    >>> backend = OllamaBackend("http://127.0.0.1:9", "astrosage", num_ctx=8192, timeout=0.5)
    >>> ok, why = backend.available()
    >>> ok, "ollama serve" in why
    (False, True)
    """

    name = "ollama"

    def __init__(self, host: str, model: str, num_ctx: int = 8192, temperature: float = 0.2,
                 timeout: float = 300.0, max_tokens: int = DEFAULT_MAX_TOKENS):
        super().__init__()
        import ollama

        self.host = host
        self.model = model
        self.num_ctx, self.max_tokens, self.timeout = num_ctx, max_tokens, timeout
        self.options = {"num_ctx": num_ctx, "temperature": temperature}
        self._ollama = ollama
        self.client = ollama.Client(host=host, timeout=timeout)
        # Probing must be quick even when the host swallows packets: a short timeout of its own.
        self._probe = ollama.Client(host=host, timeout=min(timeout, 3.0))

    def _unreachable(self, exc: Exception) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"Ollama is not answering at {self.host} ({exc.__class__.__name__}: {exc}). Start it with "
            f"`ollama serve` (or set OLLAMA_HOST / --ollama-host), or answer without a model: --backend extractive"
        )

    def _missing_model(self) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"Ollama at {self.host} does not have the model {self.model!r}. Pull it with "
            f"`ollama pull {self.model}` (see the README for AstroSage-8B), choose another with "
            f"--ollama-model, or use --backend extractive"
        )

    def _listed(self):
        """The server's listing entry for this model (an untagged name means ":latest"), or None."""
        wanted = {self.model, f"{self.model}:latest"} if ":" not in self.model else {self.model}
        return next((m for m in self._probe.list().models if m.model in wanted), None)

    def available(self) -> tuple[bool, str]:
        try:
            listed = self._listed()
        except Exception:  # httpx/connection errors surface under several names
            return False, f"Ollama is not answering at {self.host} (start it with `ollama serve`)"
        if listed is None:
            return False, f"Ollama at {self.host} lacks the model {self.model} (`ollama pull {self.model}`)"
        return True, ""

    def model_digest(self) -> str | None:
        """The model's digest as the server lists it (what a reproducibility bundle records)."""
        listed = self._listed()
        return listed.digest if listed is not None else None

    def option_logprobs(self, messages: list[dict], letters: str) -> list[float] | None:
        """Log-probabilities of each option letter as the first answer token, or None if the server gives none."""
        try:
            response = self.client.chat(model=self.model, messages=messages, stream=False, logprobs=True,
                                        top_logprobs=20, options={**self.options, "num_predict": 1})
        except self._ollama.ResponseError:
            return None  # an older server without logprobs: the caller falls back to reading the text
        except (ConnectionError, OSError) as exc:
            raise self._unreachable(exc) from exc
        entries = getattr(response, "logprobs", None)
        if not entries:
            return None
        return letter_logprobs({c.token: c.logprob for c in (entries[0].top_logprobs or [])}, letters)

    def context_size(self) -> ContextSize:
        return ContextSize(self.num_ctx, "num_ctx, sent to Ollama with every request")

    def chat(self, messages: list[dict], stream: bool = False, format: dict | str | None = None) -> Iterator[str]:
        start = time.perf_counter()
        first = None
        try:
            response = self.client.chat(model=self.model, messages=messages, stream=stream, format=format,
                                        options={**self.options, "num_predict": self.reply_tokens()})
            parts = response if stream else [response]
            for part in parts:
                if part.message and part.message.content:
                    first = first or time.perf_counter() - start
                    yield part.message.content
                if part.done:
                    self.last_usage = Usage(part.prompt_eval_count, part.eval_count, time.perf_counter() - start,
                                            finish_reason=getattr(part, "done_reason", None), first_token_s=first)
        except self._ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise self._missing_model() from exc
            raise LLMUnavailableError(
                f"Ollama at {self.host} refused the request (HTTP {exc.status_code}: {exc.error}); check the "
                f"model name and the server log") from exc
        except (ConnectionError, OSError) as exc:
            raise self._unreachable(exc) from exc
        except Exception as exc:
            if exc.__class__.__name__ in ("ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException"):
                raise LLMTimeoutError(
                    f"the model at {self.host} is slow: no reply within {self.timeout:g} s. Raise the limit "
                    f"(ASTRORAG_LLM_TIMEOUT_S or --timeout), lower --k or --max-tokens, or use a smaller model"
                ) from exc
            if exc.__class__.__module__.startswith("httpx"):
                raise self._unreachable(exc) from exc
            raise
