"""Splitting scientific prose into sentences, keeping "et al.", "e.g." and "Fig." inside theirs."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")
_ABBREV = re.compile(r"\b(al|e\.g|i\.e|cf|Fig|Eq|approx|vs)\.$")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping abbreviations such as "et al." together.

    >>> split_sentences("Labbe et al. find red sources. They are compact! Why?")
    ['Labbe et al. find red sources.', 'They are compact!', 'Why?']
    """
    pieces = _SENTENCE.split(" ".join(text.split()))
    out: list[str] = []
    for piece in pieces:
        if out and _ABBREV.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return [s for s in out if s]
