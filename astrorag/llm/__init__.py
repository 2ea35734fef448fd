"""Language-model backends, chosen in one place: :func:`get_backend` with a purpose.

Each purpose (``ask``, ``advise``, ``eval``, ``distill``, ``catalog``) takes its backend name from
:meth:`LLMSettings.backend_for`: its own setting (``ASTRORAG_ADVISE_BACKEND``...) when set, else the general
``backend`` (``ASTRORAG_BACKEND``, default ``auto``). ``extractive`` means "no language model": purposes
that can live without one get ``None`` and write plain reports or extractive answers; purposes that
cannot (``distill``, ``catalog`` narratives) get an error that says how to start a model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BackendError
from ..settings import OpenAIOptions, Settings
from .base import LLMBackend, Usage
from .extractive import ExtractiveAnswerer
from .ollama_backend import OllamaBackend
from .openai_backend import OpenAIBackend


def _ollama(s: Settings) -> LLMBackend:
    llm, own = s.llm, s.llm.ollama
    return OllamaBackend(own.host, own.model, llm.num_ctx, llm.temperature, llm.timeout_s, max_tokens=llm.max_tokens)


def _openai(s: Settings) -> LLMBackend:
    llm, own = s.llm, s.llm.openai
    # The key, if the server wants one, comes from OPENAI_API_KEY in the environment (never a setting on disk).
    return OpenAIBackend(own.url, own.model, os.environ.get("OPENAI_API_KEY"), llm.temperature,
                         max_tokens=llm.max_tokens, timeout=llm.timeout_s, concurrency=own.concurrency,
                         num_ctx=llm.num_ctx, json_mode=own.json_mode, model_required=own.model != OpenAIOptions.model)


def _llamacpp(s: Settings) -> LLMBackend:
    from .llamacpp_backend import LlamaCppBackend

    llm, own = s.llm, s.llm.llamacpp
    if not own.model:
        raise BackendError("the llamacpp backend loads a GGUF file in this process: give its path with --model "
                           "(or ASTRORAG_GGUF_MODEL), e.g. AstroSage-8B's from AstroMLab/AstroSage-8B-GGUF")
    return LlamaCppBackend(own.model, num_ctx=llm.num_ctx, temperature=llm.temperature, max_tokens=llm.max_tokens,
                           threads=own.threads, chat_format=own.chat_format)


BACKENDS: dict[str, Callable[[Settings], LLMBackend]] = {"ollama": _ollama, "openai": _openai,
                                                          "llamacpp": _llamacpp}
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
    """The backend for a purpose: ``name`` if given, else the purpose's setting, else ``settings.llm.backend``.

    ``auto`` tries Ollama, then the OpenAI-compatible server, then the configured GGUF (``gguf_model``),
    and says which it chose and why; with none of them, purposes that can do without a model get ``None``.

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
    astrorag.errors.BackendError: unknown backend 'gpt'; valid names: auto, extractive, llamacpp, ollama, openai
    """
    if purpose not in PURPOSES:
        raise BackendError(f"unknown purpose {purpose!r}; valid purposes: {', '.join(PURPOSES)}")
    name = name or settings.llm.backend_for(purpose)
    needs_model = PURPOSES[purpose]
    if name == "auto":
        return _auto(settings, purpose, needs_model)
    if name == NO_MODEL:
        if needs_model:
            raise BackendError(f"{purpose} needs a language model; the extractive backend has none. Use "
                               f"--backend ollama (AstroSage-8B served by Ollama) or --backend openai (vLLM)")
        return Selected(None)
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; valid names: {', '.join(backend_names())}")
    return Selected(BACKENDS[name](settings))


def _listening(url: str, timeout: float = 0.5) -> bool:
    """Whether anything accepts a TCP connection at the URL's host and port (a quick first probe).

    >>> _listening("http://127.0.0.1:9")
    False
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _auto(settings: Settings, purpose: str, needs_model: bool) -> Selected:
    """Ollama when it answers with the model, then an OpenAI-compatible server, then an in-process GGUF
    when one is configured; else no model (or an error for purposes that need one). Says what it chose."""
    # A closed port answers a TCP connect at once: no client library is imported (about a second) for a
    # server that is not there.
    if _listening(settings.llm.ollama.host):
        ollama = _ollama(settings.replace(llm_timeout_s=min(settings.llm.timeout_s, 300.0)))
        ok, why_ollama = ollama.available()
        if ok:
            return Selected(_ollama(settings),
                            f"notice: using Ollama at {settings.llm.ollama.host} ({settings.llm.ollama.model})")
    else:
        why_ollama = f"Ollama is not answering at {settings.llm.ollama.host} (start it with `ollama serve`)"
    openai = _openai(settings) if _listening(settings.llm.openai.url) else None
    ok, why_openai = openai.available() if openai is not None else \
        (False, f"no OpenAI-compatible server answers at {settings.llm.openai.url}")
    if ok:
        return Selected(openai, f"notice: {why_ollama}; using the OpenAI-compatible server at "
                                f"{settings.llm.openai.url} ({openai.model})")
    why = f"{why_ollama}; {why_openai}"
    if settings.llm.llamacpp.model:
        return Selected(_llamacpp(settings),
                        f"notice: {why}; using the GGUF model {settings.llm.llamacpp.model} in-process")
    if not needs_model:
        return Selected(None, f"notice: {why}; answering with the extractive backend (no language model).")
    raise BackendError(f"{purpose} needs a language model and none answers: {why}. Start Ollama with AstroSage-8B "
                       f"(see the README), an OpenAI-compatible server (--openai-url), or load a GGUF in-process "
                       f"with --backend llamacpp --model file.gguf")


__all__ = ["BACKENDS", "PURPOSES", "ExtractiveAnswerer", "LLMBackend", "OllamaBackend", "OpenAIBackend", "Selected",
           "Usage", "backend_names", "get_backend"]
