"""An index on disk: a Chroma collection of chunk vectors, a BM25 index and a SQLite ledger.

Layout of ``indexes/<name>/``::

    manifest.json   fingerprint, embedding model, chunking (checked on every open)
    ledger.sqlite   documents (records + content hashes), chunks (text), meta (checkpoints)
    chroma/         chromadb PersistentClient, collection "chunks" (cosine)
    bm25/           bm25s index over the same chunks, rebuilt when the ledger says it is stale

The ledger is written *after* Chroma, one transaction per batch, so an ingest killed at any
point leaves either a document fully recorded or not at all; re-running upserts the same
content-hash ids, which makes resume exact (no duplicates, nothing missing).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import IndexMismatchError, IndexNotFoundError
from ..ingest.chunking import CHUNKER_VERSION
from ..settings import Settings
from ..types import Chunk, Document
from .embed import resolve_model_path

COLLECTION = "chunks"
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


def index_fingerprint(settings: Settings) -> dict[str, Any]:
    """What must agree between an index and the settings that read or extend it."""
    _, identity = resolve_model_path(settings.embedding_model)
    spec = {"embedding_model": identity, "embedding_backend": settings.embedding_backend,
            "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "chunker": CHUNKER_VERSION}
    spec["fingerprint"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return spec


def category_keys(categories: Iterable[str]) -> list[str]:
    """Metadata keys for category filters: each category and its archive (``astro-ph``)."""
    keys = set()
    for cat in categories:
        keys.add(f"cat:{cat}")
        keys.add(f"arch:{cat.split('.')[0]}")
    return sorted(keys)


def category_key(category: str) -> str:
    return f"cat:{category}" if "." in category else f"arch:{category}"


def collection_name(index_name: str) -> str:
    """A Chroma collection name for an index on a shared server: [a-zA-Z0-9._-], alphanumeric at both ends."""
    import re

    name = re.sub(r"[^a-zA-Z0-9._-]", "-", index_name).strip("._-") or "index"
    return f"{name}-chunks"


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    score: float


class Index:
    """One named index. Open it with :meth:`open`; it checks the fingerprint first.

    Examples
    --------
    >>> import tempfile
    >>> s = Settings(index_dir=tempfile.mkdtemp())
    >>> idx = Index.open(s, create=True)
    >>> idx.count_documents(), idx.count_chunks()
    (0, 0)
    """

    def __init__(self, path: Path, spec: dict[str, Any], chroma_url: str | None = None):
        self.path = path
        self.chroma_url = chroma_url
        self.spec = spec
        # The app serves requests from worker threads; SQLite serialises the writes itself.
        self._db = sqlite3.connect(path / "ledger.sqlite", timeout=60, check_same_thread=False)
        self._db.executescript(SCHEMA)
        self._migrate()
        self._db.executescript(IDENTIFIER_INDEXES)
        self._chroma = None
        self._collection = None
        self._bm25 = None
        self._bm25_generation = ""
        self._bm25_ids: list[str] = []

    def _migrate(self) -> None:
        """Ledgers from before identifier columns existed get them, filled from the stored records."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(documents)")}
        if "arxiv_id" in columns:
            return
        with self._db:
            for name, kind in (("arxiv_id", "TEXT"), ("bibcode", "TEXT"), ("doi", "TEXT"), ("citation_count", "INTEGER")):
                self._db.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")
            for doc_id, record in self._db.execute("SELECT doc_id, record FROM documents").fetchall():
                d = json.loads(record)
                self._db.execute("UPDATE documents SET arxiv_id=?, bibcode=?, doi=?, citation_count=? WHERE doc_id=?",
                                 (d.get("arxiv_id"), d.get("bibcode"), (d.get("doi") or "").lower() or None,
                                  d.get("citation_count"), doc_id))

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, create: bool = False) -> "Index":
        path = settings.index_path
        spec = index_fingerprint(settings)
        manifest = path / "manifest.json"
        if manifest.is_file():
            stored = json.loads(manifest.read_text())
            if stored.get("fingerprint") != spec["fingerprint"]:
                raise IndexMismatchError(_mismatch_message(settings, stored, spec))
            return cls(path, stored, settings.chroma_url)
        if not create:
            raise IndexNotFoundError(
                f"no index named {settings.index_name!r} in {settings.index_dir}; build it with "
                f"`astrorag ingest files PATH... --index {settings.index_name}` (or `astrorag ask`, which "
                f"builds the default index from the bundled sample corpus)"
            )
        path.mkdir(parents=True, exist_ok=True)
        spec = dict(spec, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
        tmp.replace(manifest)
        return cls(path, spec, settings.chroma_url)

    @staticmethod
    def exists(settings: Settings) -> bool:
        return (settings.index_path / "manifest.json").is_file()

    @staticmethod
    def drop(settings: Settings) -> bool:
        if settings.index_path.exists():
            shutil.rmtree(settings.index_path)
            return True
        return False

    def close(self) -> None:
        self._db.close()
        # An HttpClient's connection pool is left open: chromadb shares it between every client of the same
        # server in this process, so closing it here would break the others.

    @property
    def collection(self):
        if self._collection is None:
            import chromadb

            from .chroma_ef import ChromaEmbeddingGuard

            config = chromadb.config.Settings(anonymized_telemetry=False)
            if self.chroma_url:
                from urllib.parse import urlparse

                url = urlparse(self.chroma_url)
                self._chroma = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                                   ssl=url.scheme == "https", settings=config)
                name = collection_name(self.path.name)  # one server holds many indexes
            else:
                self._chroma = chromadb.PersistentClient(str(self.path / "chroma"), settings=config)
                name = COLLECTION
            # Always pass our own embedding function: chroma's default downloads a model.
            self._collection = self._chroma.get_or_create_collection(
                name, embedding_function=ChromaEmbeddingGuard(), configuration={"hnsw": {"space": "cosine"}})
        return self._collection

    # ---- ledger ---------------------------------------------------------------------------
    def content_hashes(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT doc_id, content_hash FROM documents"))

    def count_documents(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def count_chunks(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def documents(self, doc_ids: Iterable[str] | None = None) -> dict[str, Document]:
        if doc_ids is None:
            rows = self._db.execute("SELECT doc_id, record FROM documents ORDER BY doc_id")
        else:
            ids = list(dict.fromkeys(doc_ids))
            rows = []
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                rows += self._db.execute(
                    f"SELECT doc_id, record FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part
                ).fetchall()
        return {doc_id: Document.from_dict(json.loads(record)) for doc_id, record in rows}

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        out: dict[str, Chunk] = {}
        ids = list(chunk_ids)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            for cid, doc_id, pos, section, text in self._db.execute(
                f"SELECT chunk_id, doc_id, position, section, text FROM chunks WHERE chunk_id IN "
                f"({','.join('?' * len(part))})", part):
                out[cid] = Chunk(cid, doc_id, pos, text, section)
        return out

    def related(self, doc: Document) -> list[Document]:
        """Stored records of the same paper: same id, arXiv id, bibcode or DOI."""
        rows = self._db.execute(
            "SELECT record FROM documents WHERE doc_id=? OR (arxiv_id IS NOT NULL AND arxiv_id=?) OR "
            "(bibcode IS NOT NULL AND bibcode=?) OR (doi IS NOT NULL AND doi=?)",
            (doc.doc_id, doc.arxiv_id, doc.bibcode, doc.doi.lower() if doc.doi else None)).fetchall()
        return [Document.from_dict(json.loads(r[0])) for r in rows]

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        """Remove papers (their vectors first, then the ledger), e.g. when two records merge into one."""
        for doc_id in doc_ids:
            self.collection.delete(where={"doc_id": doc_id})
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('bm25_stale', '1')")
            for doc_id in doc_ids:
                self._db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
                self._db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def doc_weights(self) -> dict[str, tuple[int | None, int | None]]:
        """doc_id -> (year, citation count), for recency and citation weighting."""
        return {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT doc_id, year, citation_count FROM documents")}

    def first_chunks(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> chunk_id of its first chunk, for the documents present."""
        out: dict[str, str] = {}
        for doc_id in doc_ids:
            row = self._db.execute("SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY position LIMIT 1",
                                   (doc_id,)).fetchone()
            if row:
                out[doc_id] = row[0]
        return out

    def chunk_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")]

    # ---- writing --------------------------------------------------------------------------
    def write_batch(self, docs: Sequence[Document], chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Store a batch: vectors into Chroma first, then the ledger in one transaction."""
        by_id = {d.doc_id: d for d in docs}
        replaced = [d for d in by_id if self._db.execute(
            "SELECT 1 FROM documents WHERE doc_id=?", (d,)).fetchone()]
        for doc_id in replaced:  # a changed paper: its old chunks go before the new ones come
            self.collection.delete(where={"doc_id": doc_id})
        if chunks:
            metadatas = []
            for c in chunks:
                d = by_id[c.doc_id]
                meta: dict[str, Any] = {"doc_id": c.doc_id, "position": c.position}
                if d.year is not None:
                    meta["year"] = d.year
                for key in category_keys(d.categories):
                    meta[key] = True
                metadatas.append(meta)
            self.collection.upsert(ids=[c.chunk_id for c in chunks], embeddings=embeddings,
                                   documents=[c.text for c in chunks], metadatas=metadatas)
        now = time.time()
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('bm25_stale', '1')")
            for doc_id in replaced:
                self._db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            self._db.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)",
                                 [(c.chunk_id, c.doc_id, c.position, c.section, c.text) for c in chunks])
            counts: dict[str, int] = {}
            for c in chunks:
                counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
            self._db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.doc_id, d.content_hash, json.dumps(d.to_dict(), sort_keys=True), d.year,
                  ";".join(d.categories), counts.get(d.doc_id, 0), now, d.arxiv_id, d.bibcode,
                  d.doi.lower() if d.doi else None, d.citation_count) for d in by_id.values()])

    # ---- BM25 -------------------------------------------------------------------------------
    def bm25_is_stale(self) -> bool:
        return self.get_meta("bm25_stale", "0") == "1" or (
            self.count_chunks() > 0 and not (self.path / "bm25" / "ids.json").is_file())

    def rebuild_bm25(self) -> None:
        """Rebuild the keyword index from the ledger (titles + chunk text)."""
        import bm25s

        rows = self._db.execute(
            "SELECT c.chunk_id, c.text, d.record FROM chunks c JOIN documents d USING(doc_id) "
            "ORDER BY c.chunk_id").fetchall()
        target = self.path / "bm25"
        tmp = self.path / "bm25.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        ids = [r[0] for r in rows]
        if rows:
            texts = [json.loads(r[2])["title"] + "\n" + r[1] for r in rows]
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            retriever.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps(ids))
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
        self.set_meta("bm25_stale", "0")
        self.set_meta("bm25_generation", str(time.time_ns()))
        self._bm25 = None

    def _load_bm25(self) -> None:
        import bm25s

        if self.bm25_is_stale():
            self.rebuild_bm25()
        generation = self.get_meta("bm25_generation", "")
        if self._bm25 is not None and generation != self._bm25_generation:
            self._bm25 = None  # another process or thread rebuilt the keyword index: reload it
        self._bm25_generation = generation
        if self._bm25 is None:
            ids = json.loads((self.path / "bm25" / "ids.json").read_text())
            self._bm25_ids = ids
            self._bm25 = bm25s.BM25.load(str(self.path / "bm25"), show_progress=False) if ids else False
            rows = dict((r[0], (r[1], r[2])) for r in self._db.execute(
                "SELECT c.chunk_id, d.year, d.categories FROM chunks c JOIN documents d USING(doc_id)"))
            self._bm25_years = np.array([rows[i][0] if rows[i][0] is not None else -1 for i in ids], dtype=int)
            self._bm25_cats = [set(category_keys(rows[i][1].split(";"))) if rows[i][1] else set() for i in ids]

    def bm25_search(self, query: str, n: int, year_min: int | None = None, year_max: int | None = None,
                    category: str | None = None) -> list[Hit]:
        import bm25s

        self._load_bm25()
        if not self._bm25:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        vocab = self._bm25.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        mask = self._filter_mask(year_min, year_max, category)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self._bm25_ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def _filter_mask(self, year_min, year_max, category) -> np.ndarray | None:
        if year_min is None and year_max is None and not category:
            return None
        mask = np.ones(len(self._bm25_ids), dtype=bool)
        if year_min is not None:
            mask &= self._bm25_years >= year_min
        if year_max is not None:
            mask &= (self._bm25_years <= year_max) & (self._bm25_years >= 0)
        if category:
            key = category_key(category)
            mask &= np.array([key in keys for keys in self._bm25_cats])
        return mask

    # ---- dense ------------------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, n: int, year_min: int | None = None, year_max: int | None = None,
                     category: str | None = None) -> list[Hit]:
        total = self.collection.count()
        if total == 0:
            return []
        clauses: list[dict[str, Any]] = []
        if year_min is not None:
            clauses.append({"year": {"$gte": int(year_min)}})
        if year_max is not None:
            clauses.append({"year": {"$lte": int(year_max)}})
        if category:
            clauses.append({category_key(category): True})
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        result = self.collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)],
                                       n_results=min(n, total), where=where, include=["distances"])
        return [Hit(cid, 1.0 - float(dist)) for cid, dist in zip(result["ids"][0], result["distances"][0])]

    # ---- reporting --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        years = self._db.execute("SELECT MIN(year), MAX(year) FROM documents").fetchone()
        return {
            "name": self.path.name, "path": str(self.path),
            "documents": self.count_documents(), "chunks": self.count_chunks(),
            "vectors": self.collection.count(), "chroma": self.chroma_url or "embedded",
            "embedding_model": self.spec["embedding_model"],
            "embedding_backend": self.spec.get("embedding_backend", "torch"),
            "chunk_size": self.spec["chunk_size"], "chunk_overlap": self.spec["chunk_overlap"],
            "fingerprint": self.spec["fingerprint"], "created": self.spec.get("created"),
            "years": list(years), "bm25_stale": self.bm25_is_stale(), "size_bytes": size,
        }


def _mismatch_message(settings: Settings, stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    def describe(s: dict[str, Any]) -> str:
        return (f"model {s.get('embedding_model')} ({s.get('embedding_backend', 'torch')}), chunks "
                f"{s.get('chunk_size')}/{s.get('chunk_overlap')}, {s.get('chunker')}")

    return (
        f"index {settings.index_name!r} at {settings.index_path} was built with {describe(stored)} "
        f"[fingerprint {stored.get('fingerprint')}], but the current settings give {describe(wanted)} "
        f"[fingerprint {wanted['fingerprint']}]. Mixing them would corrupt retrieval. Either go back to the "
        f"index's settings (e.g. ASTRORAG_EMBEDDING_MODEL={stored.get('embedding_model')} "
        f"ASTRORAG_CHUNK_SIZE={stored.get('chunk_size')} ASTRORAG_CHUNK_OVERLAP={stored.get('chunk_overlap')}), "
        f"use another index with --index NAME, or re-embed this one from its stored records with "
        f"`astrorag index rebuild --index {settings.index_name}`."
    )
