"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomically(path: Path, text: str) -> None:
    """Write through a new file in the same folder renamed over ``path``: a link at ``path`` is replaced,
    never followed, and a reader never sees half a file.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "rules.json"
    >>> write_atomically(target, "{}")
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('{}', ['rules.json'])
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (atomically); values JSON lacks (numpy numbers, paths) as text."""
    write_atomically(Path(path), json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return Path(path)


def file_name(source_id: str) -> str:
    """A source id as a file name: letters, digits, ``-``, ``_`` and ``.`` kept, anything else ``_``.

    >>> file_name("JADES 12/3:a")
    'JADES_12_3_a'
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(source_id)) or "source"
