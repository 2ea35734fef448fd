"""Telling a real answer from what small or base models often write instead: the prompt echoed back,
a loop, a reply cut off at ``max_tokens``, or nothing at all.

A base model (no chat tuning) continues its prompt: it repeats the system text and the evidence blocks
until the token limit. Their lines carry the evidence keys, so an unchecked echo would "cite" every
passage. :class:`ReplyGuard` watches a reply as it streams and says, as early as it can, why it cannot be
shown as an answer; the assistant then stops the model and answers extractively instead, with a notice.
"""

from __future__ import annotations

import re
import zlib

#: A reply line this long that equals a line of the prompt is an echo, not an answer (short lines such as
#: "Answer:" can repeat innocently).
ECHO_MIN_CHARS = 30
#: The same sentence this many times is a loop.
REPEATS = 3
#: Below this zlib ratio (compressed / raw) a long reply is mostly repetition; ordinary English prose
#: compresses to about 0.4-0.6 and a three-fold loop already to under 0.35.
MIN_COMPRESSION = 0.25
_EVIDENCE_TAG = re.compile(r"<\s*/?\s*evidence\b", re.IGNORECASE)
#: Turn markers of common chat templates: in a reply they mean the prompt was formatted with a template
#: the model does not know (llama-cpp-python falls back to Llama 2's for a GGUF without one).
_TEMPLATE_MARKER = re.compile(r"<<SYS>>|<</SYS>>|\[/?INST\]|<start_of_turn>|<end_of_turn>|<\|im_start\|>|"
                              r"<\|im_end\|>|<\|eot_id\|>|<\|start_header_id\|>")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _norm(line: str) -> str:
    return _SPACE.sub(" ", line).strip().lower()


class ReplyGuard:
    """Checks a reply against the prompt it answers, piece by piece as it streams.

    Parameters
    ----------
    messages : list of dict
        The chat messages the reply answers; their lines are what an echo would repeat.
    max_tokens : int, optional
        The reply's token limit, named in the reason when the model stops only there.

    Examples
    --------
    >>> guard = ReplyGuard([{"role": "system", "content": "You are astrorag, a careful research assistant."}])
    >>> guard.feed("LRDs are compact [1].\\n") is None
    True
    >>> guard.feed("You are astrorag, a careful research assistant.\\n")
    "it repeats the prompt ('You are astrorag, a careful research assistant.')"
    >>> ReplyGuard([]).finish("stop")
    'the model returned no text'
    """

    def __init__(self, messages: list[dict], max_tokens: int | None = None):
        self.max_tokens = max_tokens
        self._prompt_lines = {_norm(line) for m in messages for line in str(m.get("content", "")).splitlines()
                              if len(_norm(line)) >= ECHO_MIN_CHARS}
        self._text = ""
        self._checked_upto = 0  # characters of _text whose complete lines were already compared
        self.reason: str | None = None

    def feed(self, piece: str) -> str | None:
        """Add a streamed piece; the reason the reply is degenerate, once it is (then always that)."""
        if self.reason:
            return self.reason
        self._text += piece
        if _EVIDENCE_TAG.search(self._text):
            self.reason = "it echoes the evidence blocks of the prompt"
            return self.reason
        if marker := _TEMPLATE_MARKER.search(self._text):
            self.reason = (f"it writes the chat-template marker {marker.group(0)!r} (the prompt was formatted with "
                           f"a template the model does not know; give the server the model's chat format)")
            return self.reason
        end = self._text.rfind("\n")
        if end >= self._checked_upto:
            for line in self._text[self._checked_upto:end].splitlines():
                if _norm(line) in self._prompt_lines:
                    self.reason = f"it repeats the prompt ({line.strip()[:80]!r})"
                    return self.reason
            self._checked_upto = end + 1
        self.reason = self._loop(self._text)
        return self.reason

    def finish(self, finish_reason: str | None = None) -> str | None:
        """The verdict on the whole reply fed so far: ``None`` for an answer that can be shown, else why not."""
        if not self.reason:
            self.feed("\n")  # the last line has no newline of its own
            self._text = self._text[:-1]
        if self.reason:
            return self.reason
        if not self._text.strip():
            return "the model returned no text"
        if finish_reason == "length":
            limit = f" ({self.max_tokens} tokens)" if self.max_tokens else ""
            return f"it stopped only at the token limit{limit}, without finishing"
        return None

    @staticmethod
    def _loop(text: str) -> str | None:
        sentences = [_norm(s) for s in _SENTENCE_END.split(text.replace("\n", " "))]
        counts: dict[str, int] = {}
        for s in sentences:
            if len(s) >= 20:
                counts[s] = counts.get(s, 0) + 1
                if counts[s] >= REPEATS:
                    return f"it repeats itself ({s[:60]!r} {counts[s]} times)"
        if len(text) >= 600 and len(zlib.compress(text.encode())) / len(text.encode()) < MIN_COMPRESSION:
            return "it repeats itself (the reply is mostly repetition)"
        return None
