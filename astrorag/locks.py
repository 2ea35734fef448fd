"""One advisory file lock for every read-modify-write that other processes may run at the same time."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: str | Path, exclusive: bool = True) -> Iterator[None]:
    """Hold ``path``'s lock (created if missing) for the block: exclusive to write, shared to read.

    >>> import tempfile, pathlib
    >>> with locked(pathlib.Path(tempfile.mkdtemp()) / "x.lock"):
    ...     pass
    """
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
