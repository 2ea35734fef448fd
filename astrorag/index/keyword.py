"""The keyword half of an index: a bm25s index over titles and chunk text, rebuilt from the ledger when stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .derived import ChunkFilters, DerivedFolder
from .ledger import Ledger
from .vectors import Hit


class KeywordIndex:
    """BM25 over ``<index>/bm25``; any process that sees the ledger's stale flag rebuilds it.

    The keyword index is derived from the ledger, so a damaged one is rebuilt rather than reported as an
    error (``notice`` says so). Rebuilds and reads go through :class:`DerivedFolder` (private folder, atomic
    swap, file lock), so no process ever reads a half-written or missing index.
    """

    def __init__(self, index_path: Path, ledger: Ledger):
        self.derived = DerivedFolder(index_path, "bm25", ledger)
        self.folder = self.derived.folder
        self.ledger = ledger
        self.notice = ""
        self._bm25 = None
        self._generation = ""
        self._ids: list[str] = []
        self._filters = ChunkFilters(np.zeros(0, dtype=int), [])

    def is_stale(self) -> bool:
        return self.derived.flagged_stale("0") or (
            self.ledger.count_chunks() > 0 and not (self.folder / "ids.json").is_file())

    def rebuild(self) -> None:
        """Rebuild the keyword index from the ledger (titles + chunk text), atomically."""
        import bm25s

        def write(tmp: Path) -> None:
            rows = self.ledger.keyword_rows()  # read under the lock: the index matches one state of the ledger
            tokens = bm25s.tokenize([f"{title}\n{text}" for _, text, title in rows], stopwords="en",
                                    show_progress=False) if rows else None
            if tokens is not None and not tokens.vocab:
                rows = []   # no word of two letters in any text (a title "3"): nothing to find by keyword
            if rows:
                retriever = bm25s.BM25()
                retriever.index(tokens, show_progress=False)
                retriever.save(str(tmp), show_progress=False)
            (tmp / "ids.json").write_text(json.dumps([r[0] for r in rows]))

        self.derived.publish(write)
        self._bm25 = None

    def _read(self) -> None:
        import bm25s

        with self.derived.locked(exclusive=False):
            ids_file = self.folder / "ids.json"
            ids = json.loads(ids_file.read_text()) if ids_file.is_file() else []
            bm25 = bm25s.BM25.load(str(self.folder), show_progress=False) if ids else False
        rows = self.ledger.chunk_filters()
        if any(i not in rows for i in ids):
            raise ValueError("the keyword index names chunks the ledger does not hold")
        self._ids, self._bm25 = ids, bm25
        self._filters = ChunkFilters.of(ids, rows)

    def _load(self) -> None:
        if self.is_stale():
            self.rebuild()
        generation = self.derived.generation()
        if self._bm25 is not None and generation != self._generation:
            self._bm25 = None  # another process or thread rebuilt the keyword index: reload it
        self._generation = generation
        if self._bm25 is None:
            try:
                self._read()
            except Exception as exc:  # damaged files (bad JSON, truncated arrays...): the index is derived, rebuild it
                self.notice = (f"the keyword index at {self.folder} was damaged ({exc.__class__.__name__}) and has "
                               f"been rebuilt from the ledger")
                self.rebuild()
                self._read()

    def search(self, query: str, n: int, year_min: int | None = None, year_max: int | None = None,
               category: str | None = None) -> list[Hit]:
        import bm25s

        self._load()
        if not self._bm25:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        vocab = self._bm25.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        mask = self._filters.mask(year_min, year_max, category)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]
