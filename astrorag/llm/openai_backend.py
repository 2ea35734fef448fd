"""OpenAI-compatible backend (vLLM, llama.cpp server, Ollama's /v1): the real ``openai`` client, concurrent batches."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from ..errors import LLMUnavailableError
from .base import LLMBackend, Usage

T = TypeVar("T")
R = TypeVar("R")


class OpenAIBackend(LLMBackend):
    """Chat completions against any OpenAI-compatible server; :meth:`map` runs requests in parallel.

    Examples
    --------
    >>> b = OpenAIBackend("http://127.0.0.1:9/v1", "astrosage", timeout=0.5)
    >>> b.available()[0]
    False
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, temperature: float = 0.2,
                 max_tokens: int = 512, timeout: float = 300.0, concurrency: int = 8):
        super().__init__()
        import openai

        self.base_url, self.model = base_url, model
        self.temperature, self.max_tokens, self.concurrency = temperature, max_tokens, concurrency
        self._openai = openai
        # Local servers ignore the key; the client insists on one.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                                    max_retries=2)
        self.usages: list[Usage] = []

    def _unreachable(self, exc: Exception) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"no OpenAI-compatible server answers at {self.base_url} ({exc.__class__.__name__}). Start one (e.g. "
            f"`vllm serve AstroMLab/AstroSage-8B` or `llama-server -m astrosage.gguf`), set ASTRORAG_OPENAI_URL, "
            f"or use --backend ollama / extractive")

    def available(self) -> tuple[bool, str]:
        try:
            ids = {m.id for m in self.client.with_options(timeout=3.0, max_retries=0).models.list()}
        except Exception:
            return False, f"no OpenAI-compatible server answers at {self.base_url}"
        if self.model not in ids:
            return False, f"the server at {self.base_url} serves {', '.join(sorted(ids)) or 'no model'}, not {self.model}"
        return True, ""

    def chat(self, messages: list[dict], stream: bool = False, format: dict | str | None = None) -> Iterator[str]:
        start = time.perf_counter()
        extra = {}
        if isinstance(format, dict):
            extra["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": format}}
        elif format == "json":
            extra["response_format"] = {"type": "json_object"}
        try:
            if stream:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens,
                    stream=True, stream_options={"include_usage": True}, **extra)
                prompt = output = None
                for chunk in response:
                    if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
                    if getattr(chunk, "usage", None):
                        prompt, output = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                self._record(Usage(prompt, output, time.perf_counter() - start))
            else:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens,
                    **extra)
                usage = response.usage
                self._record(Usage(usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None,
                                   time.perf_counter() - start))
                yield response.choices[0].message.content or ""
        except self._openai.APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except self._openai.NotFoundError as exc:
            raise LLMUnavailableError(f"the server at {self.base_url} has no model {self.model!r}: check "
                                      f"ASTRORAG_OPENAI_MODEL") from exc
        except self._openai.APIStatusError as exc:
            raise LLMUnavailableError(f"the server at {self.base_url} refused the request (HTTP {exc.status_code})"
                                      ) from exc

    def _record(self, usage: Usage) -> None:
        self.last_usage = usage
        self.usages.append(usage)

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run ``func`` over items with up to ``concurrency`` requests in flight (order kept)."""
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(func, items))
