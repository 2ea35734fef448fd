"""The keyword half of an index: a bm25s index over titles and chunk text, rebuilt from the ledger when stale."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from .fingerprint import category_key, category_keys
from .ledger import Ledger
from .vectors import Hit


class KeywordIndex:
    """BM25 over ``<index>/bm25``; any process that sees the ledger's stale flag rebuilds it."""

    def __init__(self, index_path: Path, ledger: Ledger):
        self.folder = index_path / "bm25"
        self.ledger = ledger
        self._bm25 = None
        self._generation = ""
        self._ids: list[str] = []
        self._years = np.zeros(0, dtype=int)
        self._cats: list[set[str]] = []

    def is_stale(self) -> bool:
        return self.ledger.get_meta("bm25_stale", "0") == "1" or (
            self.ledger.count_chunks() > 0 and not (self.folder / "ids.json").is_file())

    def rebuild(self) -> None:
        """Rebuild the keyword index from the ledger (titles + chunk text)."""
        import bm25s

        rows = self.ledger.keyword_rows()
        tmp = self.folder.with_name("bm25.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        ids = [r[0] for r in rows]
        if rows:
            texts = [f"{title}\n{text}" for _, text, title in rows]
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            retriever.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps(ids))
        shutil.rmtree(self.folder, ignore_errors=True)
        tmp.replace(self.folder)
        self.ledger.set_meta("bm25_stale", "0")
        self.ledger.set_meta("bm25_generation", str(time.time_ns()))
        self._bm25 = None

    def _load(self) -> None:
        import bm25s

        if self.is_stale():
            self.rebuild()
        generation = self.ledger.get_meta("bm25_generation", "")
        if self._bm25 is not None and generation != self._generation:
            self._bm25 = None  # another process or thread rebuilt the keyword index: reload it
        self._generation = generation
        if self._bm25 is None:
            ids = json.loads((self.folder / "ids.json").read_text())
            self._ids = ids
            self._bm25 = bm25s.BM25.load(str(self.folder), show_progress=False) if ids else False
            rows = self.ledger.chunk_filters()
            self._years = np.array([rows[i][0] if rows[i][0] is not None else -1 for i in ids], dtype=int)
            self._cats = [set(category_keys(rows[i][1].split(";"))) if rows[i][1] else set() for i in ids]

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
        mask = self._filter_mask(year_min, year_max, category)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def _filter_mask(self, year_min, year_max, category) -> np.ndarray | None:
        if year_min is None and year_max is None and not category:
            return None
        mask = np.ones(len(self._ids), dtype=bool)
        if year_min is not None:
            mask &= self._years >= year_min
        if year_max is not None:
            mask &= (self._years <= year_max) & (self._years >= 0)
        if category:
            key = category_key(category)
            mask &= np.array([key in keys for keys in self._cats], dtype=bool)
        return mask
