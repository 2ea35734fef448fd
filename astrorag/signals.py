"""SIGTERM in the main process, turned into what Ctrl-C does, so every command's clean-up runs.

Kept apart from the fitting code: the CLI installs it for every command, and importing it must cost nothing.
"""

from __future__ import annotations

import signal
import threading


class Interrupted(KeyboardInterrupt):
    """SIGTERM in the main process, raised where Ctrl-C would be, so the same clean-up runs."""


def terminate_on_sigterm() -> None:
    """Make SIGTERM in the main process raise :class:`Interrupted` (finally blocks run, folders go)."""
    def handler(signum, _frame):
        raise Interrupted(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
