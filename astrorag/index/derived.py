"""What the keyword index and the query cache share: folders derived from the ledger, and their filters.

Each derived folder is rebuilt in a private folder and swapped in under an exclusive file lock, and read
under a shared one, so no process reads a half-written or missing folder; the ledger's meta holds its
``<name>_stale`` flag (set by every write) and ``<name>_generation`` (changed by every rebuild, so readers in
other processes reload).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..locks import locked
from .fingerprint import category_key, category_keys
from .ledger import Ledger


class DerivedFolder:
    """``<index>/<name>/``, derived from the ledger."""

    def __init__(self, index_path: Path, name: str, ledger: Ledger):
        self.name, self.ledger = name, ledger
        self.folder = index_path / name
        self.lock_path = index_path / f"{name}.lock"

    def locked(self, exclusive: bool):
        return locked(self.lock_path, exclusive)

    def flagged_stale(self, default: str) -> bool:
        return self.ledger.get_meta(f"{self.name}_stale", default) == "1"

    def generation(self) -> str:
        return self.ledger.get_meta(f"{self.name}_generation", "")

    def publish(self, write: Callable[[Path], None]) -> None:
        """Under the exclusive lock: ``write`` fills a private folder, which then replaces the folder atomically."""
        with self.locked(exclusive=True):
            tmp = Path(tempfile.mkdtemp(prefix=f"{self.name}.tmp-", dir=self.folder.parent))
            try:
                write(tmp)
                old = self.folder.with_name(f"{self.name}.old-{uuid.uuid4().hex[:8]}")
                if self.folder.exists():
                    self.folder.replace(old)
                tmp.replace(self.folder)
                shutil.rmtree(old, ignore_errors=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self.ledger.set_meta(f"{self.name}_stale", "0")
            self.ledger.set_meta(f"{self.name}_generation", str(time.time_ns()))

    def discard(self) -> None:
        """Remove the folder and leave it flagged stale (e.g. an index too large for the query cache)."""
        with self.locked(exclusive=True):
            shutil.rmtree(self.folder, ignore_errors=True)
            self.ledger.set_meta(f"{self.name}_stale", "1")


@dataclass
class ChunkFilters:
    """Year and category of each chunk, in a derived index's order, for the year-range and category filters."""

    years: np.ndarray
    categories: list[set[str]]

    @classmethod
    def of(cls, ids: list[str], rows: dict[str, tuple[int | None, str]]) -> ChunkFilters:
        """From the ledger's ``chunk_filters()`` rows."""
        return cls(np.array([rows.get(i, (None, ""))[0] or -1 for i in ids], dtype=int),
                   [set(category_keys(rows[i][1].split(";"))) if rows.get(i, (None, ""))[1] else set() for i in ids])

    def mask(self, year_min: int | None, year_max: int | None, category: str | None) -> np.ndarray | None:
        """Chunks that pass the filters; None when no filter is set."""
        if year_min is None and year_max is None and not category:
            return None
        mask = np.ones(len(self.years), dtype=bool)
        if year_min is not None:
            mask &= self.years >= year_min
        if year_max is not None:
            mask &= (self.years <= year_max) & (self.years >= 0)
        if category:
            key = category_key(category)
            mask &= np.array([key in keys for keys in self.categories], dtype=bool)
        return mask
