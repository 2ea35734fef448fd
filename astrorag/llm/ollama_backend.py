"""Ollama backend: the real ``ollama`` client against a local or remote Ollama server."""

from __future__ import annotations

import time
from typing import Iterator

from ..errors import LLMUnavailableError
from .base import LLMBackend, Usage


class OllamaBackend(LLMBackend):
    """Chat with a model served by Ollama (AstroSage-8B by default).

    ``num_ctx`` is always sent: Ollama's default context is too small for quoted evidence.

    Examples
    --------
    >>> backend = OllamaBackend("http://127.0.0.1:9", "astrosage", num_ctx=8192, timeout=0.5)
    >>> ok, why = backend.available()
    >>> ok, "ollama serve" in why
    (False, True)
    """

    name = "ollama"

    def __init__(self, host: str, model: str, num_ctx: int = 8192, temperature: float = 0.2,
                 timeout: float = 300.0):
        super().__init__()
        import ollama

        self.host = host
        self.model = model
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
        top = {}
        for cand in (entries[0].top_logprobs or []):
            token = cand.token.strip().strip("(").upper()
            if len(token) == 1 and token in letters and token not in top:
                top[token] = cand.logprob
        if not top:
            return None
        return [top.get(letter, float("-inf")) for letter in letters]

    def chat(self, messages: list[dict], stream: bool = False, format: dict | str | None = None) -> Iterator[str]:
        start = time.perf_counter()
        try:
            response = self.client.chat(model=self.model, messages=messages, stream=stream,
                                        options=self.options, format=format)
            parts = response if stream else [response]
            for part in parts:
                if part.message and part.message.content:
                    yield part.message.content
                if part.done:
                    self.last_usage = Usage(part.prompt_eval_count, part.eval_count,
                                            time.perf_counter() - start)
        except self._ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise self._missing_model() from exc
            raise LLMUnavailableError(
                f"Ollama at {self.host} refused the request (HTTP {exc.status_code}: {exc.error}); check the "
                f"model name and the server log") from exc
        except (ConnectionError, OSError) as exc:
            raise self._unreachable(exc) from exc
        except Exception as exc:
            if exc.__class__.__module__.startswith("httpx"):
                raise self._unreachable(exc) from exc
            raise
