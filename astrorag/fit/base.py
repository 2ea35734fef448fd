"""The fitter interface: fit one source's photometry under a :class:`ModelSpec`, return a :class:`FitResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AstroRagError
from .spec import ModelSpec


class FitError(AstroRagError, RuntimeError):
    """A fit could not run (sampler error, no detections, a model the fitter cannot build)."""


@dataclass(frozen=True)
class SourcePhotometry:
    """One source's photometry as a fitter needs it: bands with curves, fluxes and errors in uJy."""

    source_id: str
    redshift: float
    bands: tuple[str, ...]            # short band names, e.g. "f444w"
    curves: tuple[str, ...]           # transmission-curve files (wavelength in Angstrom, throughput)
    pivots_um: tuple[float, ...]
    flux_ujy: tuple[float, ...]       # NaN where missing
    error_ujy: tuple[float, ...]
    upper_limit: tuple[bool, ...] = ()

    @property
    def n_detected(self) -> int:
        f, e = np.asarray(self.flux_ujy), np.asarray(self.error_ujy)
        return int(np.sum(np.isfinite(f) & np.isfinite(e) & (e > 0) & (f > 2 * e)))


@dataclass
class FitResult:
    """What one fit gives back. ``model_ujy`` is the posterior-median model flux per band (uJy)."""

    fitter: str
    spec: ModelSpec
    model_ujy: list[float]
    chi2: float
    n_bands: int
    n_free: int
    log_evidence: float | None
    seconds: float
    posterior: dict[str, dict[str, float]] = field(default_factory=dict)  # parameter -> {p16, p50, p84}
    not_represented: list[str] = field(default_factory=list)

    @property
    def chi2_red(self) -> float:
        dof = max(self.n_bands - self.n_free, 1)
        return self.chi2 / dof

    @property
    def bic(self) -> float:
        """Schwarz's criterion: chi2 + k ln n (for fitters with no evidence)."""
        return self.chi2 + self.n_free * math.log(max(self.n_bands, 1))

    def to_dict(self) -> dict[str, Any]:
        return {"fitter": self.fitter, "model": self.spec.to_dict(), "chi2": round(self.chi2, 3),
                "chi2_red": round(self.chi2_red, 3), "n_bands": self.n_bands, "n_free": self.n_free,
                "log_evidence": None if self.log_evidence is None else round(self.log_evidence, 3),
                "bic": round(self.bic, 3), "seconds": round(self.seconds, 1), "posterior": self.posterior,
                "model_ujy": [None if not np.isfinite(v) else round(float(v), 6) for v in self.model_ujy],
                "not_represented": self.not_represented}


#: A posterior whose median lies in the top tenth of its prior range is "at the limit": the prior, not the
#: data, sets it (a generic criterion, the same for every parameter).
EDGE_FRACTION = 0.9


def at_upper_edge(posterior: dict[str, float] | None, bounds: tuple[float, float]) -> bool:
    """Is the posterior median in the top tenth of the prior range?

    >>> at_upper_edge({"p16": 0.85, "p50": 0.88, "p84": 0.89}, (0.0, 0.891))
    True
    >>> at_upper_edge({"p16": 0.2, "p50": 0.4, "p84": 0.6}, (0.0, 0.891))
    False
    """
    if not posterior or not isinstance(bounds, tuple):
        return False
    lo, hi = bounds
    return hi > lo and posterior["p50"] >= lo + EDGE_FRACTION * (hi - lo)


def chi2_of(phot: SourcePhotometry, model: np.ndarray) -> tuple[float, int]:
    """Chi-square over the measured bands (upper limits count when the model exceeds them)."""
    f, e, m = np.asarray(phot.flux_ujy), np.asarray(phot.error_ujy), np.asarray(model)
    use = np.isfinite(f) & np.isfinite(e) & (e > 0) & np.isfinite(m)
    upper = np.asarray(phot.upper_limit or [False] * len(f), dtype=bool)
    resid = np.where(upper, np.maximum(m - f, 0.0), f - m)
    return float(np.sum((resid[use] / e[use]) ** 2)), int(use.sum())


class Fitter:
    """Base class of the SED fitters. Subclasses set ``name`` and implement :meth:`fit`.

    ``n_live`` is the sampler's live-point count (tiny in tests, a few hundred for science).
    """

    name = "base"
    gives_evidence = False

    def __init__(self, n_live: int = 200, seed: int | None = 0):
        self.n_live = n_live
        self.seed = seed

    def not_representable(self, spec: ModelSpec) -> list[str]:
        """Parts of ``spec`` this fitter cannot build, in words (empty when it can build all of it)."""
        return []

    def edge_symptoms(self, result: FitResult) -> list[str]:
        """Symptoms the posterior shows (a parameter piled against its prior bound), in the rule vocabulary."""
        return []

    def translate(self, spec: ModelSpec) -> Any:
        """The fitter's own configuration for ``spec`` (two specs it builds alike are one model to it)."""
        return spec

    def fit(self, phot: SourcePhotometry, spec: ModelSpec, workdir: str | None = None) -> FitResult:
        raise NotImplementedError
