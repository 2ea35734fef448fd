"""The small base class every language-model backend implements."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..index.types import Evidence
from .prompt import build_messages, count_tokens

T = TypeVar("T")
R = TypeVar("R")

#: The largest reply a backend asks for unless told otherwise (``max_tokens``); the prompt budget keeps
#: room for it, or for a quarter of a small context, whichever is less.
DEFAULT_MAX_TOKENS = 1024
#: Tokens kept free on top of a count that only estimates the model's tokenizer: cl100k_base ran 4 % under
#: Gemma 3's own count on astrorag's prompts, and Llama 3's differs by up to about 10 %.
ESTIMATE_MARGIN = 0.10


@dataclass
class Usage:
    """Token counts, timing and the stop reason of the last call, when the backend reports them."""

    prompt_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: "stop" (the model ended its reply), "length" (cut at max_tokens), or None when not reported
    finish_reason: str | None = None
    #: seconds from the request to the first text, for streamed calls
    first_token_s: float | None = None


@dataclass(frozen=True)
class TokenCount:
    """A prompt's size and how it was counted: ``exact`` when by the model's own tokenizer."""

    tokens: int
    method: str
    exact: bool

    @property
    def with_margin(self) -> int:
        """The count to budget with: exact counts as they are, estimates with :data:`ESTIMATE_MARGIN`."""
        return self.tokens if self.exact else int(self.tokens * (1 + ESTIMATE_MARGIN)) + 1


@dataclass(frozen=True)
class ContextSize:
    """The model's context window in tokens and where that figure comes from."""

    tokens: int
    source: str


class LLMBackend:
    """A language-model backend.

    Subclasses implement :meth:`chat` (and :meth:`available` if they talk to a server). :meth:`answer`
    quotes the evidence as data and streams the model's reply; :meth:`map` runs calls one after another
    (a server that takes parallel requests overrides it); :meth:`option_logprobs` gives no scores unless
    the server can. :meth:`context_size` and :meth:`count_tokens` let the assistant fit the prompt to the
    model: the defaults use the ``num_ctx`` setting and a cl100k_base estimate. Answering without a model
    is :class:`~astrorag.llm.extractive.ExtractiveAnswerer`, which is not a chat backend.
    """

    name: str = ""
    model: str = ""
    concurrency: int = 1  # requests :meth:`map` keeps in flight
    max_tokens: int = DEFAULT_MAX_TOKENS
    num_ctx: int = 8192

    def __init__(self) -> None:
        # requests run in parallel threads: usage and the reply limit are per thread
        self._local = threading.local()

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

    def context_size(self) -> ContextSize:
        """The context window the prompt and the reply must share."""
        return ContextSize(self.num_ctx, "the num_ctx setting")

    def count_tokens(self, messages: list[dict]) -> TokenCount:
        """The prompt's size in tokens; backends with the model's tokenizer at hand count exactly."""
        return TokenCount(count_tokens(messages), "cl100k_base estimate", exact=False)

    def reply_tokens(self) -> int:
        """The most tokens the next reply may take (``max_tokens``, or less when the prompt left less room)."""
        return getattr(self._local, "reply_limit", None) or self.max_tokens

    def limit_reply(self, tokens: int | None) -> None:
        """Cap this thread's next replies at ``tokens`` (None lifts the cap): what the prompt left free."""
        self._local.reply_limit = min(tokens, self.max_tokens) if tokens else None

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
        """Log-probabilities of each option letter as the first answer token; None when the model gives none."""
        return None

    def close(self) -> None:
        """Release what the backend holds (an in-process model's memory); servers need nothing."""


def letter_logprobs(candidates: dict[str, float], letters: str) -> list[float] | None:
    """Per option letter, the best log-probability among first tokens that spell it (" B", "B", "(B").

    >>> letter_logprobs({" B": -0.1, "A": -2.5, "hello": -1.0, "(b": -3.0}, "ABCD")
    [-2.5, -0.1, -inf, -inf]
    >>> letter_logprobs({"the": -0.1}, "AB") is None
    True
    """
    top: dict[str, float] = {}
    for token, logprob in candidates.items():
        letter = token.strip().lstrip("(*").upper()
        if len(letter) == 1 and letter in letters and (letter not in top or logprob > top[letter]):
            top[letter] = logprob
    if not top:
        return None
    return [top.get(letter, float("-inf")) for letter in letters]
