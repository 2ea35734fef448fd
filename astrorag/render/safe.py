"""Text from records is data: control characters never reach a terminal, the app or an MCP client.

A title or abstract can carry ESC sequences (``ESC[8m`` hides text, ``ESC[2J`` clears the screen, OSC sequences
retitle the window or write the clipboard), NUL, DEL or C1 controls. :func:`plain_text` drops them (tabs and
newlines stay); :class:`SafeStream` does so for everything a command prints.
"""

from __future__ import annotations

from typing import TextIO

from ..types import plain_text

__all__ = ["SafeStream", "plain_text"]


class SafeStream:
    """A text stream that writes what it is given through :func:`plain_text` (progress bars keep ``\\r``)."""

    def __init__(self, stream: TextIO, keep_carriage_return: bool = False):
        self._stream, self._keep = stream, keep_carriage_return

    def write(self, text: str) -> int:
        self._stream.write(plain_text(text, self._keep))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
