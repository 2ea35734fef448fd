"""Reading JSON Lines files, one way for every reader (records, fit logs, suites, qrels)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JsonLine:
    """One non-blank line: its number (from 1) and value, or why it is not JSON."""

    number: int
    value: Any = None
    error: str | None = None


def jsonl_lines(path: str | Path) -> Iterator[JsonLine]:
    """Stream the non-blank lines of a JSONL file, parsed; a bad line is reported, never fatal.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n\\nnot json\\n')
    >>> [(l.number, l.value, bool(l.error)) for l in jsonl_lines(p)]
    [(1, {'a': 1}, False), (3, None, True)]
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield JsonLine(number, json.loads(line))
            except json.JSONDecodeError as exc:
                yield JsonLine(number, error=f"not valid JSON ({exc.msg})")
            except RecursionError:
                yield JsonLine(number, error="nested too deeply to be a record")
