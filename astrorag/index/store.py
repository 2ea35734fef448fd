"""An index on disk: the ledger, the Chroma vectors and the BM25 keyword index, behind one facade.

Layout of ``indexes/<name>/``::

    manifest.json   fingerprint, embedding model, chunking (checked on every open; fingerprint.py)
    ledger.sqlite   documents (records + content hashes), chunks (text), meta (checkpoints; ledger.py)
    chroma/         chromadb PersistentClient, collection "chunks" (cosine; vectors.py)
    bm25/           bm25s index over the same chunks, rebuilt when the ledger says it is stale (keyword.py)

The ledger is written *after* Chroma, one transaction per batch, so an ingest killed at any
point leaves either a document fully recorded or not at all; re-running upserts the same
content-hash ids, which makes resume exact (no duplicates, nothing missing).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from ..errors import IndexDamagedError, IndexMismatchError, IndexNotFoundError
from ..settings import Settings
from .dense_cache import DenseCache
from .fingerprint import index_fingerprint, mismatch_message
from .keyword import KeywordIndex
from .ledger import Ledger, ledger_damage
from .types import Chunk, Document
from .vectors import Hit, VectorStore

__all__ = ["Hit", "Index", "index_fingerprint"]


class Index:
    """One named index. Open it with :meth:`open`; it checks the fingerprint first.

    Reading methods (documents, chunks, counts, meta...) are the ledger's; searches go to the vector store or
    the keyword index; :meth:`write_batch` writes vectors, then the ledger.

    Examples
    --------
    >>> import tempfile
    >>> s = Settings(index_dir=tempfile.mkdtemp())
    >>> idx = Index.open(s, create=True)
    >>> idx.count_documents(), idx.count_chunks()
    (0, 0)
    """

    def __init__(self, path: Path, spec: dict[str, Any], chroma_url: str | None = None):
        damage = ledger_damage(path / "ledger.sqlite")
        if damage:
            raise IndexDamagedError(
                f"the ledger of index {path.name!r} ({path / 'ledger.sqlite'}) is damaged: {damage}. Run "
                f"`astrorag index repair --index {path.name}`: it keeps the damaged file aside and rebuilds the "
                f"ledger from the texts and metadata in the vector store (titles and authors come back on the "
                f"next ingest of the same sources)")
        self.path = path
        self.chroma_url = chroma_url
        self.spec = spec
        self.ledger = Ledger(path / "ledger.sqlite")
        self.vectors = VectorStore(path, chroma_url)
        self.keyword = KeywordIndex(path, self.ledger)
        # A shared Chroma server is the only copy; an embedded store gets a fast exact cache for queries.
        self.dense = DenseCache(path, self.ledger) if not chroma_url else None

    # ---- reading: the ledger's records ------------------------------------------------------------
    def content_hashes(self) -> dict[str, str]:
        return self.ledger.content_hashes()

    def count_documents(self) -> int:
        return self.ledger.count_documents()

    def count_chunks(self) -> int:
        return self.ledger.count_chunks()

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        return self.ledger.get_meta(key, default)

    def set_meta(self, key: str, value: str) -> None:
        self.ledger.set_meta(key, value)

    def documents(self, doc_ids: Iterable[str] | None = None) -> dict[str, Document]:
        return self.ledger.documents(doc_ids)

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        return self.ledger.chunks(chunk_ids)

    def related(self, doc: Document) -> list[Document]:
        return self.ledger.related(doc)

    def doc_weights(self) -> dict[str, tuple[int | None, int | None]]:
        return self.ledger.doc_weights()

    def first_chunks(self, doc_ids: Sequence[str]) -> dict[str, str]:
        return self.ledger.first_chunks(doc_ids)

    def chunk_ids(self) -> list[str]:
        return self.ledger.chunk_ids()

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, create: bool = False) -> Index:
        """The index the settings name; with ``create``, a new one when there is none.

        Opening and creating hold one lock beside the index folder, so that processes that start together on
        a new index see it either absent or whole: never a half-written manifest or an empty ledger file
        (which would read as damage).
        """
        from ..locks import locked

        settings.storage.index_dir.mkdir(parents=True, exist_ok=True)
        with locked(settings.storage.index_dir / f".{settings.storage.index_name}.open.lock"):
            return cls._open(settings, create)

    @classmethod
    def _open(cls, settings: Settings, create: bool) -> Index:
        path = settings.index_path
        spec = index_fingerprint(settings)
        manifest = path / "manifest.json"
        if manifest.is_file():
            try:
                stored = json.loads(manifest.read_text())
                stored["fingerprint"]
            except (ValueError, KeyError, TypeError) as exc:
                raise IndexDamagedError(
                    f"the manifest of index {settings.storage.index_name!r} ({manifest}) is damaged "
                    f"({exc.__class__.__name__}); `astrorag index repair --index {settings.storage.index_name}` "
                    f"rewrites it from the current settings (use the settings the index was built with)") from None
            if stored.get("fingerprint") != spec["fingerprint"]:
                raise IndexMismatchError(mismatch_message(settings, stored, spec))
            return cls(path, stored, settings.storage.chroma_url)
        if not create:
            raise IndexNotFoundError(
                f"no index named {settings.storage.index_name!r} in {settings.storage.index_dir}; build it with "
                f"`astrorag ingest files PATH... --index {settings.storage.index_name}` (or `astrorag ask`, which "
                f"builds the default index from the bundled sample corpus)"
            )
        path.mkdir(parents=True, exist_ok=True)
        spec = dict(spec, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
        tmp.replace(manifest)
        return cls(path, spec, settings.storage.chroma_url)

    @staticmethod
    def exists(settings: Settings) -> bool:
        return (settings.index_path / "manifest.json").is_file()

    @staticmethod
    def list(settings: Settings) -> list[dict[str, Any]]:
        """The manifests of the indexes in ``settings.storage.index_dir``, by name."""
        root = settings.storage.index_dir
        paths = sorted(root.glob("*/manifest.json")) if root.is_dir() else []
        return [dict(json.loads(p.read_text()), name=p.parent.name) for p in paths]

    @staticmethod
    def drop(settings: Settings) -> bool:
        if settings.index_path.exists():
            shutil.rmtree(settings.index_path)
            return True
        return False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.ledger.close()
        # An HttpClient's connection pool is left open: chromadb shares it between every client of the same
        # server in this process, so closing it here would break the others.

    @property
    def collection(self):
        """The Chroma collection (for callers that read stored vectors)."""
        return self.vectors.collection

    # ---- writing --------------------------------------------------------------------------
    def write_batch(self, docs: Sequence[Document], chunks: Sequence[Chunk],
                    embeddings: np.ndarray) -> tuple[int, int, int]:
        """Store a batch: vectors into Chroma first, then the ledger in one transaction; returns the
        ledger's (added, updated, unchanged) for it."""
        by_id = {d.doc_id: d for d in docs}
        replaced = [d for d in by_id if self.ledger.has_document(d)]
        for doc_id in replaced:  # a changed paper: its old chunks go before the new ones come
            self.vectors.delete_document(doc_id)
        if chunks:
            self.vectors.upsert(chunks, by_id, embeddings)
        return self.ledger.record_batch(list(by_id.values()), chunks, replaced)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        """Remove papers (their vectors first, then the ledger), e.g. when two records merge into one."""
        for doc_id in doc_ids:
            self.vectors.delete_document(doc_id)
        self.ledger.delete_documents(doc_ids)

    # ---- searching ------------------------------------------------------------------------
    def bm25_is_stale(self) -> bool:
        return self.keyword.is_stale()

    def rebuild_bm25(self) -> None:
        self.keyword.rebuild()

    def bm25_search(self, query: str, n: int, year_min: int | None = None, year_max: int | None = None,
                    category: str | None = None) -> list[Hit]:
        return self.keyword.search(query, n, year_min, year_max, category)

    def dense_search(self, vector: np.ndarray, n: int, year_min: int | None = None, year_max: int | None = None,
                     category: str | None = None) -> list[Hit]:
        if self.dense is not None and self.dense.usable():
            return self.dense.search(vector, n, year_min, year_max, category)
        return self.vectors.search(vector, n, year_min, year_max, category)

    def refresh_dense_cache(self) -> None:
        """Rebuild the query cache of the vectors when a write made it stale (an ingest's last step)."""
        if self.dense is not None and not self.dense.usable():
            self.dense.rebuild(self.vectors)

    def missing_vectors_notice(self) -> str:
        """A notice when the vector store has lost chunks the ledger records (cheap when the cache is fresh)."""
        if self.dense is not None and self.dense.usable():
            if (self.path / "chroma" / "chroma.sqlite3").is_file():
                return ""
            return (f"the vector store of index {self.path.name!r} (chroma/) is missing; answers use its cached "
                    f"copy; run `astrorag index repair --index {self.path.name}` to restore it")
        chunks, vectors = self.count_chunks(), self.vectors.count()
        if vectors < chunks:
            return (f"the vector store holds {vectors} of the index's {chunks} chunks, so dense retrieval misses "
                    f"passages; run `astrorag index repair --index {self.path.name}`")
        return ""

    # ---- health -----------------------------------------------------------------------------
    def check(self, full: bool = True) -> list[str]:
        """What is wrong, part by part, each with its fix; an empty list for a sound index.

        ``full`` adds SQLite's integrity check of every page (reads the whole ledger).
        """
        found = []
        if full and (result := self.ledger.integrity()) != "ok":
            found.append(f"ledger: SQLite integrity check: {result}; run `astrorag index repair`")
        chunks, vectors = self.count_chunks(), self.vectors.count()
        if vectors < chunks:
            found.append(f"vector store: holds {vectors} of the ledger's {chunks} chunks (dense retrieval misses "
                         f"the rest); run `astrorag index repair` to re-embed them from the ledger")
        elif vectors > chunks:
            found.append(f"ledger: records {chunks} chunks but the vector store holds {vectors}; run "
                         f"`astrorag index repair` to recover the missing records from the vector store")
        try:
            ids = json.loads((self.path / "bm25" / "ids.json").read_text()) if (self.path / "bm25").exists() else None
            if ids is not None and not self.bm25_is_stale() and len(ids) != chunks:
                found.append(f"keyword index: {len(ids)} chunks against the ledger's {chunks}; it is rebuilt "
                             f"on the next search (or by `astrorag index repair`)")
        except (ValueError, OSError) as exc:
            found.append(f"keyword index: unreadable ({exc.__class__.__name__}); it is rebuilt on the next search")
        return found

    # ---- reporting --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return {
            "name": self.path.name, "path": str(self.path),
            "documents": self.count_documents(), "chunks": self.count_chunks(),
            "vectors": self.vectors.count(), "chroma": self.chroma_url or "embedded",
            "embedding_model": self.spec["embedding_model"],
            "embedding_backend": self.spec.get("embedding_backend", "torch"),
            "chunk_size": self.spec["chunk_size"], "chunk_overlap": self.spec["chunk_overlap"],
            "fingerprint": self.spec["fingerprint"], "created": self.spec.get("created"),
            "years": self.ledger.year_range(), "bm25_stale": self.bm25_is_stale(), "size_bytes": size,
        }
