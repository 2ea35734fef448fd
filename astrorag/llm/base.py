"""The small base class every language-model backend implements."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..types import Evidence
from .prompt import build_messages


@dataclass
class Usage:
    """Token counts and timing of the last call, when the backend reports them."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LLMBackend:
    """A language-model backend.

    Subclasses implement :meth:`chat` (and :meth:`available` if they talk to a server). The
    default :meth:`answer` quotes the evidence as data and streams the model's reply; a backend
    without a model (the extractive one) overrides it.
    """

    name: str = ""
    model: str = ""
    is_generative: bool = True

    def __init__(self) -> None:
        self._local = threading.local()  # requests run in parallel threads: usage is per thread

    @property
    def last_usage(self) -> Usage:
        """Tokens and time of this thread's last call."""
        return getattr(self._local, "usage", None) or Usage()

    @last_usage.setter
    def last_usage(self, usage: Usage) -> None:
        self._local.usage = usage

    def available(self) -> tuple[bool, str]:
        """``(True, "")`` when ready, else ``(False, reason-with-fix)``."""
        return True, ""

    def chat(self, messages: list[dict], stream: bool = False, format: dict | str | None = None) -> Iterator[str]:
        """Yield the reply text (one piece unless ``stream``); ``format`` asks for JSON (a schema or "json")."""
        raise NotImplementedError

    def answer(self, question: str, evidence: list[Evidence], history: list[dict] | None = None) -> Iterator[str]:
        """Stream an answer grounded in the evidence, citing its keys."""
        yield from self.chat(build_messages(question, evidence, history), stream=True)
