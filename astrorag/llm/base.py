"""The small base class every language-model backend implements."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

from ..types import Evidence
from .prompt import build_messages

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Usage:
    """Token counts and timing of the last call, when the backend reports them."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LLMBackend:
    """A language-model backend.

    Subclasses implement :meth:`chat` (and :meth:`available` if they talk to a server). :meth:`answer`
    quotes the evidence as data and streams the model's reply; :meth:`map` runs calls one after another
    (a server that takes parallel requests overrides it); :meth:`option_logprobs` gives no scores unless
    the server can. Answering without a model is :class:`~astrorag.llm.extractive.ExtractiveAnswerer`,
    which is not a chat backend.
    """

    name: str = ""
    model: str = ""
    concurrency: int = 1  # requests :meth:`map` keeps in flight

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

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[func(x) for x in items]``; backends that serve parallel requests run them concurrently."""
        return [func(item) for item in items]

    def option_logprobs(self, messages: list[dict], letters: str) -> list[float] | None:
        """Log-probabilities of each option letter as the first answer token; None when the server gives none."""
        return None
