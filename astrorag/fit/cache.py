"""Finished fits kept on disk, so an interrupted run resumes where it stopped.

A fit is a pure function of the photometry, the model, the fitter's options and its seed (the seed is a
content hash of the same things: :func:`~astrorag.fit.base.fit_seed`), so a fit found under the hash of
all of them is the fit that would be run. Each is one small JSON file written atomically the moment the
fit ends; ``--fresh`` ignores them.

A cache is a cache, not an input: every entry carries an HMAC-SHA256 of its content and its key under a
secret that this cache folder keeps for itself (``.key``, readable by its owner only), and is validated by a
schema (:class:`CachedFit`) when read. A file someone planted under the right name, a damaged file or one from
another cache is not believed: the fit runs again and :attr:`FitCache.refused` says which and why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import __version__
from ..files import write_atomically
from .base import FitResult
from .spec import ModelSpec

if TYPE_CHECKING:
    from ..sed.photometry import Photometry

#: The largest cache entry read (bytes): a fit's JSON is a few kB.
MAX_ENTRY_BYTES = 2_000_000


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


Quantiles = dict[str, float]


class CachedFit(BaseModel):
    """What a cache entry must hold: the :class:`FitResult` fields (less the model, which the caller gives)."""

    model_config = ConfigDict(extra="forbid")
    fitter: str = Field(max_length=100)
    model_ujy: list[float | None] = Field(max_length=10_000)
    chi2: float = Field(ge=0, allow_inf_nan=False)
    n_bands: int = Field(ge=0, le=10_000)
    n_free: int = Field(ge=0, le=1_000)
    log_evidence: float | None = Field(None, allow_inf_nan=False)
    seconds: float = Field(ge=0, allow_inf_nan=False)
    posterior: dict[str, Quantiles] = Field(default_factory=dict, max_length=200)
    not_represented: list[str] = Field(default_factory=list, max_length=200)
    log_evidence_err: float | None = Field(None, ge=0, allow_inf_nan=False)
    priors: dict[str, tuple[float, float, str]] = Field(default_factory=dict, max_length=200)
    seed: int | None = None
    converged: bool = True
    inflation: Quantiles | None = None


class FitCache:
    """Fits by :func:`fit_key` in ``folder`` (one JSON file each); ``enabled=False`` reads and writes nothing.

    ``hits`` counts the fits taken from it, ``written`` holds when each of them was made (Unix seconds), and
    ``refused`` what was found and not believed (the fit ran again).
    """

    def __init__(self, folder: str | Path, enabled: bool = True):
        self.folder, self.enabled = Path(folder), enabled
        self.hits = 0
        self.written: list[float] = []
        self.refused: list[str] = []
        self._secret: bytes | None = None

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def _key(self) -> bytes:
        """This cache's own secret, made on first use (owner-only); another process making it at the same
        moment loses the race and reads the winner's."""
        if self._secret is None:
            path = self.folder / ".key"
            for _ in range(2):
                try:
                    secret = bytes.fromhex(path.read_text().strip())
                    if len(secret) == 32:
                        self._secret = secret
                        break
                    path.unlink()   # not a key: replace it (entries signed with it will be refitted)
                except FileNotFoundError:
                    pass
                except (OSError, ValueError):
                    path.unlink(missing_ok=True)
                self.folder.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
            if self._secret is None:
                self._secret = bytes.fromhex(path.read_text().strip())
        return self._secret

    def _digest(self, key: str, fit: dict[str, Any], written: float) -> str:
        text = json.dumps({"key": key, "fit": fit, "written": written}, sort_keys=True, default=float)
        return hmac.new(self._key(), text.encode(), hashlib.sha256).hexdigest()

    def get(self, key: str, spec: ModelSpec) -> FitResult | None:
        """The kept fit, with ``spec`` (the model asked for, whose notes the file does not keep); None when
        absent, or when the entry is damaged, foreign or planted (then :attr:`refused` says so)."""
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            if path.stat().st_size > MAX_ENTRY_BYTES:
                raise ValueError(f"{path.stat().st_size} bytes, more than a fit holds")
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            return self._refuse(path, f"unreadable ({type(exc).__name__})")
        if not isinstance(entry, dict) or not {"fit", "digest", "written"} <= set(entry):
            return self._refuse(path, "not a fit-cache entry")
        try:
            fit = CachedFit.model_validate(entry["fit"])
            written = float(entry["written"])
        except (ValidationError, TypeError, ValueError) as exc:
            return self._refuse(path, f"fails the schema ({str(exc).splitlines()[0][:120]})")
        if not hmac.compare_digest(str(entry["digest"]), self._digest(key, entry["fit"], written)):
            return self._refuse(path, "its digest is not this cache's: written elsewhere or changed since")
        data = fit.model_dump()
        data["model_ujy"] = [float("nan") if v is None else v for v in data["model_ujy"]]
        result = FitResult(spec=spec, **data)
        self.hits += 1
        self.written.append(written)
        return result

    def _refuse(self, path: Path, why: str) -> None:
        self.refused.append(f"{path.name}: {why}")

    def put(self, key: str, result: FitResult) -> None:
        if not self.enabled:
            return
        fit: dict[str, Any] = {f.name: getattr(result, f.name) for f in dataclasses.fields(FitResult)
                               if f.name != "spec"}
        fit["model_ujy"] = [float(v) if not math.isnan(v) else None for v in fit["model_ujy"]]   # NaN -> null
        fit = json.loads(json.dumps(fit, default=float))   # the form it is read back in, for the digest
        written = round(time.time(), 3)
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, json.dumps({"fit": fit, "written": written,
                                             "digest": self._digest(key, fit, written)}))

    def summary(self) -> str:
        """What the cache gave this run, in one line ("" when nothing)."""
        parts = []
        if self.hits:
            first, last = (time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) for t in (min(self.written),
                                                                                     max(self.written)))
            when = first if first == last else f"{first} to {last}"
            parts.append(f"{self.hits} fit(s) taken from the fit cache, made {when} ({self.folder}; --fresh "
                         "refits them)")
        if self.refused:
            parts.append(f"{len(self.refused)} fit-cache entr{'y' if len(self.refused) == 1 else 'ies'} not "
                         f"believed and refitted: {'; '.join(self.refused[:3])}")
        return "; ".join(parts)
