"""Read local files of paper records (arXiv-style or ADS-style) into Documents.

A bad record never stops the file: it becomes a :class:`Problem` naming file, line and reason,
and the good records are still returned.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..index.types import Document
from ..jsonl import jsonl_lines
from ..types import Problem, normalize_arxiv_id

SUPPORTED = (".jsonl", ".ndjson", ".json", ".csv")
#: The longest text field a record may bring (characters): a whole paper's text is a few hundred thousand;
#: beyond it the field is cut, with a note, so that no record can stall chunking or exhaust memory.
MAX_FIELD_CHARS = {"title": 2_000, "abstract": 100_000, "summary": 100_000, "body": 2_000_000,
                   "text": 2_000_000}
#: A CSV field longer than this (characters) makes its row a problem (Python's csv module stops at 128 KiB).
MAX_CSV_FIELD = 4_000_000


@dataclass
class Note:
    """Something said about a record that was kept (a field cut to its bound)."""

    text: str


@dataclass
class ReadResult:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # kept records with something worth saying (bad UTF-8)


def read_files(paths: Iterable[str | Path]) -> ReadResult:
    """Read every file (folders are searched for supported files) into one result.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
    >>> _ = p.write_text('{"id": "2401.09981", "title": "LRDs", "abstract": "Red."}\\nnot json\\n')
    >>> r = read_files([p])
    >>> [d.doc_id for d in r.documents], str(r.problems[0]).endswith(":2: not valid JSON (Expecting value)")
    (['2401.09981'], True)
    """
    result = ReadResult()
    for path in _expand(paths):
        kept: list[Document] = []
        try:
            for item in _read_one(path):
                if isinstance(item, Problem):
                    result.problems.append(item)
                elif isinstance(item, Note):
                    result.notes.append(item.text)
                else:
                    kept.append(item)
        except RecursionError:  # JSON nested deeper than Python parses: this file only, the others go on
            result.problems.append(Problem(str(path), 0, "JSON nested too deeply to read; file skipped"))
            continue
        result.documents.extend(kept)
        if bad := invalid_utf8(path):
            result.notes.append(f"{path}: {bad} invalid UTF-8 byte sequence(s) replaced by U+FFFD; the records "
                                f"were kept (re-save the file as UTF-8 to keep those characters)")
    return result


def invalid_utf8(path: Path) -> int:
    r"""How many invalid UTF-8 sequences reading ``path`` replaces with U+FFFD.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_bytes(b'{"title": "caf\xe9 \xff"}')
    >>> invalid_utf8(p)
    2
    """
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        return 0
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace").count("\ufffd") - raw.count("\ufffd".encode("utf-8"))


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED)
            if not found:
                raise InputError(f"folder {path} holds no {', '.join(SUPPORTED)} files")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED:
                raise InputError(
                    f"{path}: unsupported file type {path.suffix or '(none)'}; use one of {', '.join(SUPPORTED)}"
                )
            files.append(path)
        else:
            raise InputError(f"{path} does not exist; check the path")
    return files


def _read_one(path: Path) -> Iterator[Document | Problem | Note]:
    if path.stat().st_size == 0:
        yield Problem(str(path), 0, "file is empty: no records to ingest")
        return
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path)
    elif suffix == ".json":
        yield from _read_json(path)
    else:
        yield from _read_csv(path)


def _read_jsonl(path: Path) -> Iterator[Document | Problem | Note]:
    seen_any = False
    for line in jsonl_lines(path):
        seen_any = True
        if line.error:
            yield Problem(str(path), line.number, line.error)
        else:
            yield from _with_notes(line.value, path, line.number)
    if not seen_any:
        yield Problem(str(path), 0, "file holds only blank lines: no records to ingest")


def _read_json(path: Path) -> Iterator[Document | Problem | Note]:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        yield Problem(str(path), exc.lineno, f"not valid JSON ({exc.msg})")
        return
    if isinstance(data, dict):
        # An ADS API response keeps its records under response.docs.
        response = data.get("response")
        if "response" in data and not (isinstance(response, dict) and isinstance(response.get("docs"), list)):
            yield Problem(str(path), 1, "an ADS response must hold response.docs, a list of records")
            return
        data = response["docs"] if response is not None else data.get("docs", data.get("records", [data]))
    if not isinstance(data, list):
        yield Problem(str(path), 1, "expected a list of records (or an ADS response with response.docs)")
        return
    for number, record in enumerate(data, start=1):
        # Records in one JSON document have no line of their own; report their position instead.
        yield from _with_notes(record, path, number)


def _read_csv(path: Path) -> Iterator[Document | Problem | Note]:
    csv.field_size_limit(MAX_CSV_FIELD)
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            yield Problem(str(path), 1, f"the header row cannot be read ({exc})")
            return
        if not fieldnames:
            yield Problem(str(path), 1, "no header row")
            return
        line = 1
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # A field past the bound: this row is a problem; csv resynchronises at the next line.
                line = reader.line_num
                yield Problem(str(path), start, f"unreadable row ({exc}; fields are limited to "
                                                f"{MAX_CSV_FIELD:,} characters)")
                continue
            line = reader.line_num
            if None in row:
                yield Problem(str(path), start, f"{len(row[None])} more fields than the header has")
                continue
            yield from _with_notes({k: v for k, v in row.items() if k is not None}, path, start)


def _with_notes(record: Any, path: Path, line: int) -> Iterator[Document | Problem | Note]:
    """The record's document (or problem), and a note for each text field cut to its bound."""
    if isinstance(record, dict):
        record = dict(record)
        for name, limit in MAX_FIELD_CHARS.items():
            value = record.get(name)
            if isinstance(value, str) and len(value) > limit:
                record[name] = value[:limit]
                yield Note(f"{path}:{line}: {name} cut from {len(value):,} to {limit:,} characters")
    yield _to_document(record, path, line)


def _to_document(record: Any, path: Path, line: int) -> Document | Problem:
    if not isinstance(record, dict):
        return Problem(str(path), line, f"expected an object with fields, got {type(record).__name__}")
    try:
        if record.get("bibcode"):
            return _from_ads(record)
        return _from_arxiv_or_plain(record)
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError) as exc:
        return Problem(str(path), line, str(exc) or type(exc).__name__)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return _as_list(json.loads(text))
        except json.JSONDecodeError:
            pass
    return [p.strip() for p in re.split(r"[;|]", text) if p.strip()]


def _year(value: Any) -> int | None:
    if value in (None, ""):
        return None
    match = re.match(r"\s*(\d{4})", str(value))
    if not match:
        raise ValueError(f"year/published {value!r} does not start with a four-digit year")
    return int(match.group(1))


def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
        if not math.isfinite(number) or not 0 <= number <= 1e9:
            raise ValueError
        return int(number)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"citation_count {str(value)[:40]!r} is not a count (a whole number from 0 to 1e9)") \
            from None


def _identifier(value: Any, name: str) -> str | None:
    """A DOI or similar: one string (the first of a list), never an object."""
    value = _first(value)
    if value in (None, ""):
        return None
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")  # noqa: TRY004 (reported per line)
    text = str(value).strip()
    if len(text) > 300:
        raise ValueError(f"{name} is {len(text):,} characters long; an identifier has at most 300")
    return text


def _require_title(record: dict[str, Any]) -> str:
    title = _first(record.get("title"))
    if not title or not str(title).strip():
        raise ValueError("record has no title")
    return str(title)


def _from_ads(record: dict[str, Any]) -> Document:
    identifiers = _as_list(record.get("identifier"))
    arxiv_id = record.get("arxiv_id") or next(
        (normalize_arxiv_id(i) for i in identifiers if normalize_arxiv_id(i)), None)
    abstract = str(record.get("abstract") or "")  # many records (GCN circulars) have a title only
    return Document.create(
        title=_require_title(record), abstract=abstract, body=str(record.get("body") or ""),
        authors=_as_list(record.get("author")), year=_year(record.get("year")),
        arxiv_id=arxiv_id, bibcode=_identifier(record["bibcode"], "bibcode"), doi=_identifier(record.get("doi"), "doi"),
        source="ads",
        citation_count=_int_or_none(record.get("citation_count")), published=record.get("pubdate"),
    )


def _from_arxiv_or_plain(record: dict[str, Any]) -> Document:
    raw_id = record.get("arxiv_id") or record.get("id") or record.get("entry_id")
    arxiv_id = normalize_arxiv_id(raw_id)
    text = str(record.get("abstract") or record.get("summary") or "")
    body = str(record.get("body") or record.get("text") or "")
    published = record.get("published") or record.get("date")
    year = _year(record.get("year") or published)
    authors = record.get("authors") or record.get("author")
    return Document.create(
        title=_require_title(record), abstract=text, body=body, authors=_as_list(authors), year=year,
        arxiv_id=arxiv_id, doi=_identifier(record.get("doi"), "doi"), categories=_as_list(record.get("categories")),
        source="arxiv" if arxiv_id else "file", published=str(published) if published else None,
        citation_count=_int_or_none(record.get("citation_count")),
    )
