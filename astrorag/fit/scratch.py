"""Scratch folders and worker processes that do not outlive the fit that made them.

bagpipes writes into a working folder (``pipes/``) that astrorag never reads back, so each fit gets a
temporary one. A fit can end in three ways besides finishing: Ctrl-C, SIGTERM (a batch system's time
limit) or SIGKILL. Folders are named with the owning process id, registered while in use and removed on
any exit the process sees; a folder left by a killed process is swept by the next fit. Pool workers get
SIGTERM when their parent dies (Linux ``PR_SET_PDEATHSIG``, with a watchdog thread elsewhere), remove
their folders and exit, so a killed ``astrorag fit`` leaves no orphan fitting on.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

PREFIX = "astrorag-bagpipes-"
_NAME = re.compile(rf"{PREFIX}(\d+)-")
_LIVE: set[str] = set()


@contextlib.contextmanager
def scratch_dir() -> Iterator[str]:
    """A temporary folder for one fit, removed afterwards (and by :func:`remove_live` on a signal)."""
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    _LIVE.add(folder)
    try:
        yield folder
    finally:
        _LIVE.discard(folder)
        shutil.rmtree(folder, ignore_errors=True)


def remove_live() -> None:
    """Remove every scratch folder this process holds (from a signal handler, before exiting)."""
    for folder in list(_LIVE):
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE.discard(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(root: str | None = None) -> list[str]:
    """Remove scratch folders whose process is gone (left by a SIGKILL); returns what was removed.

    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> os.mkdir(os.path.join(root, PREFIX + "999999999-x"))
    >>> [os.path.basename(p) for p in sweep_stale(root)]
    ['astrorag-bagpipes-999999999-x']
    """
    removed = []
    base = Path(root or tempfile.gettempdir())
    for folder in base.glob(f"{PREFIX}*"):
        match = _NAME.match(folder.name)
        if match and folder.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def _leave(signum, _frame) -> None:
    remove_live()
    os._exit(128 + signum)


def init_worker() -> None:
    """A pool worker's initializer: die with the parent, clean up on SIGTERM, leave Ctrl-C to the parent."""
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _leave)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends Ctrl-C to every process; the parent decides
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent thread exits
        except OSError:
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        _leave(signal.SIGTERM, None)

    def watch() -> None:  # where prctl is missing (macOS) or the parent was re-parented
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                _leave(signal.SIGTERM, None)

    threading.Thread(target=watch, daemon=True, name="astrorag-parent-watch").start()
