"""The keyword half of an index: a bm25s index over titles and chunk text, rebuilt from the ledger when stale."""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .fingerprint import category_key, category_keys
from .ledger import Ledger
from .vectors import Hit


class KeywordIndex:
    """BM25 over ``<index>/bm25``; any process that sees the ledger's stale flag rebuilds it.

    The keyword index is derived from the ledger, so a damaged one is rebuilt rather than reported as an
    error (``notice`` says so). Rebuilds build in a private folder and swap it in under an exclusive file lock;
    readers hold a shared lock while they load, so no process ever reads a half-written or missing index.
    """

    def __init__(self, index_path: Path, ledger: Ledger):
        self.folder = index_path / "bm25"
        self.lock_path = index_path / "bm25.lock"
        self.ledger = ledger
        self.notice = ""
        self._bm25 = None
        self._generation = ""
        self._ids: list[str] = []
        self._years = np.zeros(0, dtype=int)
        self._cats: list[set[str]] = []

    @contextmanager
    def _locked(self, exclusive: bool):
        with open(self.lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def is_stale(self) -> bool:
        return self.ledger.get_meta("bm25_stale", "0") == "1" or (
            self.ledger.count_chunks() > 0 and not (self.folder / "ids.json").is_file())

    def rebuild(self) -> None:
        """Rebuild the keyword index from the ledger (titles + chunk text), atomically."""
        import bm25s

        with self._locked(exclusive=True):
            rows = self.ledger.keyword_rows()
            tmp = Path(tempfile.mkdtemp(prefix="bm25.tmp-", dir=self.folder.parent))
            try:
                ids = [r[0] for r in rows]
                if rows:
                    texts = [f"{title}\n{text}" for _, text, title in rows]
                    retriever = bm25s.BM25()
                    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
                    retriever.save(str(tmp), show_progress=False)
                (tmp / "ids.json").write_text(json.dumps(ids))
                old = self.folder.with_name(f"bm25.old-{uuid.uuid4().hex[:8]}")
                if self.folder.exists():
                    self.folder.replace(old)
                tmp.replace(self.folder)
                shutil.rmtree(old, ignore_errors=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self.ledger.set_meta("bm25_stale", "0")
            self.ledger.set_meta("bm25_generation", str(time.time_ns()))
        self._bm25 = None

    def _read(self) -> None:
        import bm25s

        with self._locked(exclusive=False):
            ids_file = self.folder / "ids.json"
            ids = json.loads(ids_file.read_text()) if ids_file.is_file() else []
            bm25 = bm25s.BM25.load(str(self.folder), show_progress=False) if ids else False
        rows = self.ledger.chunk_filters()
        if any(i not in rows for i in ids):
            raise ValueError("the keyword index names chunks the ledger does not hold")
        self._ids, self._bm25 = ids, bm25
        self._years = np.array([rows[i][0] if rows[i][0] is not None else -1 for i in ids], dtype=int)
        self._cats = [set(category_keys(rows[i][1].split(";"))) if rows[i][1] else set() for i in ids]

    def _load(self) -> None:
        if self.is_stale():
            self.rebuild()
        generation = self.ledger.get_meta("bm25_generation", "")
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
