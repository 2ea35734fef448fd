"""What crosses every package: content-hash ids, arXiv id normalisation and the record of a bad input line.

Each package owns its own nouns: literature in :mod:`astrorag.index.types`, rules in
:mod:`astrorag.graph.types`, SED advice in :mod:`astrorag.sed.types`, fits in :mod:`astrorag.fit.base`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_ARXIV_NEW = re.compile(r"^\d{4}\.\d{4,5}$")
_ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*/\d{7}$", re.IGNORECASE)


def content_hash(*parts: str, size: int = 16) -> str:
    """Stable hex digest of some text parts, used for content-addressed ids.

    >>> content_hash("a", "b") == content_hash("a", "b") != content_hash("ab")
    True
    """
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:size]


def normalize_arxiv_id(raw: str | None) -> str | None:
    """Return a bare arXiv id without URL prefix, ``arXiv:`` label or version, or None.

    >>> normalize_arxiv_id("http://arxiv.org/abs/2509.07066v1")
    '2509.07066'
    >>> normalize_arxiv_id("arXiv:astro-ph/0601001v2")
    'astro-ph/0601001'
    >>> normalize_arxiv_id("10.1093/mnras/x") is None
    True
    """
    if not raw:
        return None
    text = str(raw).strip()
    text = re.sub(r"^https?://(export\.)?arxiv\.org/(abs|pdf)/", "", text)
    text = re.sub(r"^arxiv:", "", text, flags=re.IGNORECASE)
    text = re.sub(r"v\d+$", "", text).removesuffix(".pdf")
    if _ARXIV_NEW.match(text) or _ARXIV_OLD.match(text):
        return text
    return None


@dataclass(frozen=True)
class Problem:
    """A record or row that could not be read: where (file and line) and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def first_problems(problems: list[Problem], limit: int = 5) -> str:
    """The first few problems for an error message, after a colon; empty when there are none.

    >>> "no readable rows" + first_problems([Problem("a.csv", 3, "not a number: 'x'")])
    "no readable rows: a.csv:3: not a number: 'x'"
    """
    return ": " + "; ".join(str(p) for p in problems[:limit]) if problems else ""


def bibcode_parts(bibcode: str) -> tuple[str, str, str] | None:
    """(journal, volume, page) of a journal bibcode such as 2024ApJ...968...38K; None for e-prints."""
    if len(bibcode) != 19 or "arXiv" in bibcode:
        return None
    journal, volume, page = bibcode[4:9].strip("."), bibcode[9:13].strip("."), bibcode[14:18].strip(".")
    return (journal, volume, page) if journal else None


# C0 controls but tab and newline, DEL and the C1 block; ESC sequences go first as a whole.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_KEEP_CR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def plain_text(text: str, keep_carriage_return: bool = False) -> str:
    """``text`` without terminal escape sequences and control characters (tabs and newlines kept): record text
    is data, and ``ESC[8m`` (hidden text), ``ESC[2J`` (clear screen) or an OSC title must not act on a terminal,
    the app or an agent's client.

    >>> plain_text("a\\x1b[8mhidden\\x1b[0m b\\x1b]0;owned\\x07 c\\x00\\x7f\\x9b")
    'ahidden b c'
    """
    text = _ESCAPES.sub("", text)
    return (_CONTROLS_KEEP_CR if keep_carriage_return else _CONTROLS).sub("", text)
