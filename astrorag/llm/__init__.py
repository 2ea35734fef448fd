"""Language-model backends, chosen in one place: :func:`get_backend` with a purpose.

Each purpose (``ask``, ``advise``, ``eval``, ``distill``, ``catalog``) takes its backend name from
:meth:`Settings.backend_for`: its own setting (``ASTRORAG_ADVISE_BACKEND``...) when set, else the general
``backend`` (``ASTRORAG_BACKEND``, default ``auto``). ``extractive`` means "no language model": purposes
that can live without one get ``None`` and write plain reports or extractive answers; purposes that
cannot (``distill``, ``catalog`` narratives) get an error that says how to start a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..errors import BackendError
from ..settings import Settings
from .base import LLMBackend, Usage
from .extractive import ExtractiveAnswerer
from .ollama_backend import OllamaBackend
from .openai_backend import OpenAIBackend

BACKENDS: dict[str, Callable[[Settings], LLMBackend]] = {
    "ollama": lambda s: OllamaBackend(s.ollama_host, s.ollama_model, s.num_ctx, s.temperature, s.llm_timeout_s),
    # The key, if the server wants one, comes from OPENAI_API_KEY in the environment (never a setting on disk).
    "openai": lambda s: OpenAIBackend(s.openai_url, s.openai_model, os.environ.get("OPENAI_API_KEY"),
                                      s.temperature, timeout=s.llm_timeout_s, concurrency=s.llm_concurrency),
}
NO_MODEL = "extractive"

#: purpose -> whether it needs a language model (True) or can do without one (False)
PURPOSES: dict[str, bool] = {"ask": False, "advise": False, "eval": False, "distill": True, "catalog": True}


@dataclass
class Selected:
    """The outcome of :func:`get_backend`: a model, or ``None`` for "no language model", and why."""

    llm: LLMBackend | None
    notice: str = ""

    @property
    def name(self) -> str:
        return self.llm.name if self.llm is not None else NO_MODEL


def backend_names() -> list[str]:
    return ["auto", NO_MODEL, *sorted(BACKENDS)]


def get_backend(settings: Settings, purpose: str = "ask", name: str | None = None) -> Selected:
    """The backend for a purpose: ``name`` if given, else the purpose's setting, else ``settings.backend``.

    ``auto`` is Ollama when it answers and has the model; otherwise, for purposes that can do without a
    model, ``None`` with a notice; for purposes that need one, the OpenAI-compatible server if it answers.

    Raises
    ------
    BackendError
        For an unknown name or purpose (the message lists the valid ones), or when a purpose that needs a
        language model is given ``extractive`` or finds no server.

    Examples
    --------
    >>> get_backend(Settings(), "ask", "extractive").llm is None
    True
    >>> get_backend(Settings(), "ask", "gpt")
    Traceback (most recent call last):
    ...
    astrorag.errors.BackendError: unknown backend 'gpt'; valid names: auto, extractive, ollama, openai
    """
    if purpose not in PURPOSES:
        raise BackendError(f"unknown purpose {purpose!r}; valid purposes: {', '.join(PURPOSES)}")
    name = name or settings.backend_for(purpose)
    needs_model = PURPOSES[purpose]
    if name == "auto":
        probe = settings.replace(llm_timeout_s=min(settings.llm_timeout_s, 300.0))
        ollama = BACKENDS["ollama"](probe)
        ok, why = ollama.available()
        if ok:
            return Selected(BACKENDS["ollama"](settings))
        if not needs_model:
            return Selected(None, f"notice: {why}; answering with the extractive backend (no language model).")
        openai = BACKENDS["openai"](settings)
        ok2, why2 = openai.available()
        if ok2:
            return Selected(openai, f"notice: {why}; using the OpenAI-compatible server at {settings.openai_url}.")
        raise BackendError(f"{purpose} needs a language model and none answers: {why}; {why2}. Start Ollama "
                           f"with AstroSage-8B (see the README) or an OpenAI-compatible server (vLLM)")
    if name == NO_MODEL:
        if needs_model:
            raise BackendError(f"{purpose} needs a language model; the extractive backend has none. Use "
                               f"--backend ollama (AstroSage-8B served by Ollama) or --backend openai (vLLM)")
        return Selected(None)
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; valid names: {', '.join(backend_names())}")
    return Selected(BACKENDS[name](settings))


__all__ = ["LLMBackend", "Usage", "OllamaBackend", "OpenAIBackend", "ExtractiveAnswerer", "Selected",
           "get_backend", "backend_names", "BACKENDS", "PURPOSES"]
