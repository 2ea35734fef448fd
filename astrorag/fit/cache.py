"""Finished fits kept on disk, so an interrupted run resumes where it stopped.

A fit is a pure function of the photometry, the model, the fitter's options and its seed (the seed is a
content hash of the same things: :func:`~astrorag.fit.base.fit_seed`), so a fit found under the hash of
all of them is the fit that would be run. Each is one small JSON file written atomically the moment the
fit ends; ``--fresh`` ignores them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..files import write_atomically
from .base import FitResult
from .spec import ModelSpec

if TYPE_CHECKING:
    from ..sed.photometry import Photometry


def _curve_stamp(path: str) -> str:
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    return f"{stat.st_size}:{int(stat.st_mtime)}"


def fit_key(fitter, source: Photometry, spec: ModelSpec, replicate: int) -> str:
    """The content hash a fit is kept under: everything its result depends on (for one source, its
    photometry with the fit errors)."""
    options = getattr(fitter, "options", None)
    photometry = {**source.to_dict(), "error_ujy": [float(e) for e in source.fit_err[0]], "model_ujy": None}
    data = {"astrorag": __version__, "fitter": fitter.name, "version": getattr(fitter, "version", ""),
            "options": dataclasses.asdict(options) if dataclasses.is_dataclass(options) else repr(options),
            "source": photometry, "curves": [_curve_stamp(c) for c in source.curves if c],
            "model": spec.describe(), "replicate": replicate}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class FitCache:
    """Fits by :func:`fit_key` in ``folder`` (one JSON file each); ``enabled=False`` reads and writes nothing."""

    def __init__(self, folder: str | Path, enabled: bool = True):
        self.folder, self.enabled = Path(folder), enabled
        self.hits = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str, spec: ModelSpec) -> FitResult | None:
        """The kept fit, with ``spec`` (the model asked for, whose notes the file does not keep)."""
        if not self.enabled:
            return None
        try:
            data = json.loads(self._path(key).read_text())
            fields = {f.name for f in dataclasses.fields(FitResult)} - {"spec"}
            result = FitResult(spec=spec, **{k: v for k, v in data.items() if k in fields})
        except (OSError, ValueError, TypeError):
            return None  # absent or damaged: the fit is run again
        result.priors = {k: tuple(v) for k, v in result.priors.items()}
        self.hits += 1
        return result

    def put(self, key: str, result: FitResult) -> None:
        if not self.enabled:
            return
        data: dict[str, Any] = {f.name: getattr(result, f.name) for f in dataclasses.fields(FitResult)
                                if f.name != "spec"}
        data["model_ujy"] = [float(v) for v in data["model_ujy"]]
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, json.dumps(data, default=float))
