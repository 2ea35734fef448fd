"""Text from records is data: control characters never reach a terminal, the app or an MCP client.

A title or abstract can carry ESC sequences (``ESC[8m`` hides text, ``ESC[2J`` clears the screen, OSC sequences
retitle the window or write the clipboard), NUL, DEL or C1 controls. :func:`plain_text` drops them (tabs and
newlines stay); :class:`SafeStream` does so for everything a command prints.
"""

from __future__ import annotations

import re
from typing import TextIO

# C0 controls but tab and newline, DEL and the C1 block; ESC sequences go first as a whole.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_KEEP_CR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def plain_text(text: str, keep_carriage_return: bool = False) -> str:
    """``text`` without terminal escape sequences and control characters (tabs and newlines kept).

    >>> plain_text("a\\x1b[8mhidden\\x1b[0m b\\x1b]0;owned\\x07 c\\x00\\x7f\\x9b")
    'ahidden b c'
    """
    text = _ESCAPES.sub("", text)
    return (_CONTROLS_KEEP_CR if keep_carriage_return else _CONTROLS).sub("", text)


class SafeStream:
    """A text stream that writes what it is given through :func:`plain_text` (progress bars keep ``\\r``)."""

    def __init__(self, stream: TextIO, keep_carriage_return: bool = False):
        self._stream, self._keep = stream, keep_carriage_return

    def write(self, text: str) -> int:
        self._stream.write(plain_text(text, self._keep))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
