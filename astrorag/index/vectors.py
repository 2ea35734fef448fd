"""The dense half of an index: a Chroma collection of chunk vectors (embedded, or on a `chroma run` server)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .fingerprint import category_key, category_keys
from .types import Chunk, Document

COLLECTION = "chunks"


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    score: float


def collection_name(index_name: str) -> str:
    """A Chroma collection name for an index on a shared server: [a-zA-Z0-9._-], alphanumeric at both ends."""
    name = re.sub(r"[^a-zA-Z0-9._-]", "-", index_name).strip("._-") or "index"
    return f"{name}-chunks"


class VectorStore:
    """Chunk vectors with year and category metadata, opened on first use."""

    def __init__(self, index_path: Path, chroma_url: str | None = None):
        self.index_path = index_path
        self.chroma_url = chroma_url
        self.client = None
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            import chromadb

            from .chroma_ef import ChromaEmbeddingGuard

            config = chromadb.config.Settings(anonymized_telemetry=False)
            if self.chroma_url:
                from urllib.parse import urlparse

                url = urlparse(self.chroma_url)
                self.client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                                  ssl=url.scheme == "https", settings=config)
                name = collection_name(self.index_path.name)  # one server holds many indexes
            else:
                self.client = chromadb.PersistentClient(str(self.index_path / "chroma"), settings=config)
                name = COLLECTION
            # Always pass our own embedding function: chroma's default downloads a model.
            self._collection = self.client.get_or_create_collection(
                name, embedding_function=ChromaEmbeddingGuard(), configuration={"hnsw": {"space": "cosine"}})
        return self._collection

    def count(self) -> int:
        return self.collection.count()

    def delete_document(self, doc_id: str) -> None:
        self.collection.delete(where={"doc_id": doc_id})

    def upsert(self, chunks: Sequence[Chunk], docs: dict[str, Document], embeddings: np.ndarray) -> None:
        """Store chunk vectors, in pieces no larger than the client's maximum batch (5,461 for chromadb 1.5)."""
        metadatas = []
        for c in chunks:
            d = docs[c.doc_id]
            meta: dict[str, Any] = {"doc_id": c.doc_id, "position": c.position}
            if d.year is not None:
                meta["year"] = d.year
            for key in category_keys(d.categories):
                meta[key] = True
            metadatas.append(meta)
        collection = self.collection
        step = max(1, int(self.client.get_max_batch_size()))
        for start in range(0, len(chunks), step):
            part = slice(start, start + step)
            collection.upsert(ids=[c.chunk_id for c in chunks[part]], embeddings=embeddings[part],
                              documents=[c.text for c in chunks[part]], metadatas=metadatas[part])

    def stored(self, page: int = 5000):
        """Every stored chunk as (chunk_id, text, metadata), page by page (for rebuilding a lost ledger)."""
        total = self.collection.count()
        for offset in range(0, total, page):
            got = self.collection.get(offset=offset, limit=page, include=["documents", "metadatas"])
            yield from zip(got["ids"], got["documents"], got["metadatas"])

    def ids(self, page: int = 20000) -> set[str]:
        total = self.collection.count()
        return {cid for offset in range(0, total, page)
                for cid in self.collection.get(offset=offset, limit=page, include=[])["ids"]}

    def search(self, vector: np.ndarray, n: int, year_min: int | None = None, year_max: int | None = None,
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
