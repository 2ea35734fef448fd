"""A derived, exact copy of an embedded index's vectors for fast cold queries: one float32 matrix on disk.

Chroma stays the store of record. Importing chromadb and opening its client costs about a second, most of a
cold ``ask``; for indexes up to ``MAX_CHUNKS`` chunks an exact search over a memory-mapped matrix answers in
milliseconds without it. The cache is rebuilt after every ingest that writes (and flagged stale by any write,
like the keyword index), and is never used for a shared Chroma server or when it disagrees with the ledger.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .derived import ChunkFilters, DerivedFolder
from .ledger import Ledger
from .vectors import Hit, VectorStore

#: Beyond this many chunks (150 MB of 384-d float32) queries go to Chroma's HNSW index.
MAX_CHUNKS = 100_000


class DenseCache:
    """``<index>/dense/``: ``vectors.npy`` (N x d, normalised) and ``ids.json`` in the same order."""

    def __init__(self, index_path: Path, ledger: Ledger):
        self.derived = DerivedFolder(index_path, "dense", ledger)
        self.folder = self.derived.folder
        self.ledger = ledger
        self._matrix: np.ndarray | None = None
        self._ids: list[str] = []
        self._generation = ""

    def usable(self) -> bool:
        """Fresh (no write since it was built) and the same size as the ledger."""
        if self.derived.flagged_stale("1") or not (self.folder / "ids.json").is_file():
            return False
        self._load()
        return self._matrix is not None and len(self._ids) == self.ledger.count_chunks()

    def rebuild(self, vectors: VectorStore) -> bool:
        """Copy the vectors out of Chroma (an ingest's last step); False when the index is too large for it."""
        total = vectors.count()
        if total > MAX_CHUNKS:
            self.derived.discard()
            return False
        ids: list[str] = []
        rows: list[np.ndarray] = []
        for offset in range(0, total, 5000):
            got = vectors.collection.get(offset=offset, limit=5000, include=["embeddings"])
            ids += got["ids"]
            rows.append(np.asarray(got["embeddings"], dtype=np.float32))

        def write(tmp: Path) -> None:
            np.save(tmp / "vectors.npy", np.vstack(rows) if rows else np.zeros((0, 1), dtype=np.float32))
            (tmp / "ids.json").write_text(json.dumps(ids))

        self.derived.publish(write)
        self._matrix = None
        return True

    def _load(self) -> None:
        generation = self.derived.generation()
        if self._matrix is not None and generation == self._generation:
            return
        try:
            with self.derived.locked(exclusive=False):
                ids = json.loads((self.folder / "ids.json").read_text())
                matrix = np.load(self.folder / "vectors.npy", mmap_mode="r")
            if len(ids) != len(matrix):
                raise ValueError("ids and vectors differ in length")
        except (OSError, ValueError):  # a damaged cache is only a slower query: fall back to Chroma
            self._matrix, self._ids = None, []
            return
        self._ids, self._matrix, self._generation = ids, matrix, generation
        self._filters = ChunkFilters.of(ids, self.ledger.chunk_filters())

    def search(self, vector: np.ndarray, n: int, year_min: int | None = None, year_max: int | None = None,
               category: str | None = None) -> list[Hit]:
        """Exact cosine search (the vectors are normalised), best first."""
        self._load()
        if self._matrix is None or not len(self._ids):
            return []
        scores = np.asarray(self._matrix @ np.asarray(vector, dtype=np.float32))
        mask = self._filters.mask(year_min, year_max, category)
        candidates = np.arange(len(scores)) if mask is None else np.flatnonzero(mask)
        if not len(candidates):
            return []
        n = min(n, len(candidates))
        top = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self._ids[i], float(scores[i])) for i in top]
