"""The SQLite ledger of an index: documents (records, content hashes), chunks (text) and meta (checkpoints).

The ledger is the source of truth for what an index holds; vectors and the keyword index are derived from it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path

from .types import Chunk, Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, record TEXT NOT NULL,
    year INTEGER, categories TEXT NOT NULL DEFAULT '', n_chunks INTEGER NOT NULL, ingested_at REAL NOT NULL,
    arxiv_id TEXT, bibcode TEXT, doi TEXT, citation_count INTEGER);

CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, position INTEGER NOT NULL,
    section TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
IDENTIFIER_INDEXES = """
CREATE INDEX IF NOT EXISTS documents_arxiv ON documents(arxiv_id);
CREATE INDEX IF NOT EXISTS documents_bibcode ON documents(bibcode);
CREATE INDEX IF NOT EXISTS documents_doi ON documents(doi);
"""


def ledger_damage(path: Path) -> str:
    """Why the ledger file at ``path`` is unusable, or "" when it looks sound (cheap: header and size only).

    A zero-byte file (SQLite would silently start an empty database in it) and a file shorter than its
    header's page count (a truncated copy) are damage; so is a file SQLite cannot read at all.
    """
    if not path.exists():
        return ""
    size = path.stat().st_size
    if size == 0:
        return "it is empty (0 bytes)"
    try:
        # Read-write on purpose: a process killed mid-transaction leaves a hot journal, which SQLite rolls back
        # on the next open; that is recovery, not damage (a read-only open would fail on it).
        with closing(sqlite3.connect(path, timeout=60)) as db:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            db.execute("SELECT COUNT(*) FROM documents").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it ({exc})"
    if pages * page_size > size:
        return f"it is truncated ({size} bytes of the {pages * page_size} its header describes)"
    return ""


class Ledger:
    """Documents, chunks and meta of one index in ``ledger.sqlite``."""

    def __init__(self, path: Path):
        self.path = path
        # The app serves requests from worker threads; SQLite serialises the writes itself.
        self.db = sqlite3.connect(path, timeout=60, check_same_thread=False)
        self.db.executescript(SCHEMA)
        self._migrate()
        self.db.executescript(IDENTIFIER_INDEXES)

    def integrity(self) -> str:
        """SQLite's full check of every page: "ok", or what is wrong (``index check`` runs it)."""
        try:
            rows = self.db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return "; ".join(r[0] for r in rows[:5])

    def _migrate(self) -> None:
        """Ledgers from before identifier columns existed get them, filled from the stored records."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(documents)")}
        if "arxiv_id" in columns:
            return
        with self.db:
            for name, kind in (("arxiv_id", "TEXT"), ("bibcode", "TEXT"), ("doi", "TEXT"), ("citation_count", "INTEGER")):
                self.db.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")
            for doc_id, record in self.db.execute("SELECT doc_id, record FROM documents").fetchall():
                d = json.loads(record)
                self.db.execute("UPDATE documents SET arxiv_id=?, bibcode=?, doi=?, citation_count=? WHERE doc_id=?",
                                (d.get("arxiv_id"), d.get("bibcode"), (d.get("doi") or "").lower() or None,
                                 d.get("citation_count"), doc_id))

    def close(self) -> None:
        self.db.close()

    # ---- reading ----------------------------------------------------------------------------
    def content_hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT doc_id, content_hash FROM documents"))

    def content_hashes_of(self, doc_ids: Sequence[str]) -> dict[str, str]:
        ids = list(doc_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            out.update(self.db.execute(f"SELECT doc_id, content_hash FROM documents WHERE doc_id IN "
                                       f"({','.join('?' * len(part))})", part))
        return out

    def count_documents(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def count_chunks(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def has_document(self, doc_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)).fetchone() is not None

    def documents(self, doc_ids: Iterable[str] | None = None) -> dict[str, Document]:
        if doc_ids is None:
            rows = self.db.execute("SELECT doc_id, record FROM documents ORDER BY doc_id")
        else:
            ids = list(dict.fromkeys(doc_ids))
            rows = []
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                rows += self.db.execute(
                    f"SELECT doc_id, record FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part
                ).fetchall()
        return {doc_id: Document.from_dict(json.loads(record)) for doc_id, record in rows}

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        out: dict[str, Chunk] = {}
        ids = list(chunk_ids)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            for cid, doc_id, pos, section, text in self.db.execute(
                f"SELECT chunk_id, doc_id, position, section, text FROM chunks WHERE chunk_id IN "
                f"({','.join('?' * len(part))})", part):
                out[cid] = Chunk(cid, doc_id, pos, text, section)
        return out

    def related(self, doc: Document) -> list[Document]:
        """Stored records of the same paper: same id, arXiv id, bibcode or DOI."""
        rows = self.db.execute(
            "SELECT record FROM documents WHERE doc_id=? OR (arxiv_id IS NOT NULL AND arxiv_id=?) OR "
            "(bibcode IS NOT NULL AND bibcode=?) OR (doi IS NOT NULL AND doi=?)",
            (doc.doc_id, doc.arxiv_id, doc.bibcode, doc.doi.lower() if doc.doi else None)).fetchall()
        return [Document.from_dict(json.loads(r[0])) for r in rows]

    def doc_weights(self) -> dict[str, tuple[int | None, int | None]]:
        """doc_id -> (year, citation count), for recency and citation weighting."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT doc_id, year, citation_count FROM documents")}

    def first_chunks(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> chunk_id of its first chunk, for the documents present."""
        out: dict[str, str] = {}
        for doc_id in doc_ids:
            row = self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY position LIMIT 1",
                                  (doc_id,)).fetchone()
            if row:
                out[doc_id] = row[0]
        return out

    def chunk_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")]

    def keyword_rows(self) -> list[tuple[str, str, str]]:
        """(chunk_id, chunk text, the document's title) for every chunk, in chunk-id order."""
        return [(cid, text, json.loads(record)["title"]) for cid, text, record in self.db.execute(
            "SELECT c.chunk_id, c.text, d.record FROM chunks c JOIN documents d USING(doc_id) ORDER BY c.chunk_id")]

    def chunk_filters(self) -> dict[str, tuple[int | None, str]]:
        """chunk_id -> (its document's year, its ';'-joined categories)."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute(
            "SELECT c.chunk_id, d.year, d.categories FROM chunks c JOIN documents d USING(doc_id)")}

    def year_range(self) -> list:
        return list(self.db.execute("SELECT MIN(year), MAX(year) FROM documents").fetchone())

    # ---- writing ----------------------------------------------------------------------------
    def record_batch(self, docs: Sequence[Document], chunks: Sequence[Chunk],
                     replaced: Sequence[str]) -> tuple[int, int, int]:
        """One transaction: the batch's documents and chunks (a replaced paper's old chunks go first).

        Returns (added, updated, unchanged) as the ledger stood inside the transaction, so concurrent
        ingests of the same papers count each paper once between them.
        """
        now = time.time()
        counts: dict[str, int] = {}
        for c in chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        ids = [d.doc_id for d in docs]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")  # the write lock first: what we read is what we replace
            before = dict(self.db.execute(f"SELECT doc_id, content_hash FROM documents WHERE doc_id IN "
                                          f"({','.join('?' * len(ids))})", ids).fetchall()) if ids else {}
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('bm25_stale', '1')")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('dense_stale', '1')")
            for doc_id in replaced:
                self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            self.db.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)",
                                [(c.chunk_id, c.doc_id, c.position, c.section, c.text) for c in chunks])
            self.db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.doc_id, d.content_hash, json.dumps(d.to_dict(), sort_keys=True), d.year,
                  ";".join(d.categories), counts.get(d.doc_id, 0), now, d.arxiv_id, d.bibcode,
                  d.doi.lower() if d.doi else None, d.citation_count) for d in docs])
        added = sum(1 for d in docs if d.doc_id not in before)
        updated = sum(1 for d in docs if d.doc_id in before and before[d.doc_id] != d.content_hash)
        return added, updated, len(docs) - added - updated

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('bm25_stale', '1')")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('dense_stale', '1')")
            for doc_id in doc_ids:
                self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
                self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
