"""Language-model backends, looked up by name with :func:`get_backend`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..errors import BackendError
from ..index.embed import Embedder
from ..settings import Settings
from .base import LLMBackend, Usage
from .extractive import ExtractiveBackend
from .ollama_backend import OllamaBackend
from .openai_backend import OpenAIBackend

BACKENDS: dict[str, Callable[[Settings, Embedder | None], LLMBackend]] = {
    "ollama": lambda s, e: OllamaBackend(s.ollama_host, s.ollama_model, s.num_ctx, s.temperature, s.llm_timeout_s),
    "extractive": lambda s, e: ExtractiveBackend(embedder=e),
    # The key, if the server wants one, comes from OPENAI_API_KEY in the environment (never a setting on disk).
    "openai": lambda s, e: OpenAIBackend(s.openai_url, s.openai_model, os.environ.get("OPENAI_API_KEY"),
                                         s.temperature, timeout=s.llm_timeout_s, concurrency=s.llm_concurrency),
}


@dataclass
class Selected:
    backend: LLMBackend
    notice: str = ""


def backend_names() -> list[str]:
    return ["auto", *sorted(BACKENDS)]


def get_backend(name: str, settings: Settings, embedder: Embedder | None = None) -> Selected:
    """Return the named backend; ``auto`` is Ollama when it answers and has the model, else extractive.

    Raises
    ------
    BackendError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> get_backend("extractive", Settings()).backend.name
    'extractive'
    >>> get_backend("gpt", Settings())
    Traceback (most recent call last):
    ...
    astrorag.errors.BackendError: unknown backend 'gpt'; valid names: auto, extractive, ollama, openai
    """
    if name == "auto":
        ollama = BACKENDS["ollama"](settings.replace(llm_timeout_s=min(settings.llm_timeout_s, 300.0)), embedder)
        ok, why = ollama.available()
        if ok:
            return Selected(ollama)
        return Selected(BACKENDS["extractive"](settings, embedder),
                        f"notice: {why}; answering with the extractive backend (no language model).")
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; valid names: {', '.join(backend_names())}")
    return Selected(BACKENDS[name](settings, embedder))


__all__ = ["LLMBackend", "Usage", "OllamaBackend", "OpenAIBackend", "ExtractiveBackend", "get_backend", "backend_names", "BACKENDS"]
