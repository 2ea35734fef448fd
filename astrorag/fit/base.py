"""The fitter interface: fit one source's photometry under a :class:`ModelSpec`, return a :class:`FitResult`."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AstroRagError
from ..settings import SamplerOptions
from .likelihood import INFLATION_NAME, LIKELIHOOD
from .spec import ModelSpec

if TYPE_CHECKING:
    from ..sed.photometry import Photometry


class FitError(AstroRagError, RuntimeError):
    """A fit could not run (sampler error, no detections, a model the fitter cannot build)."""


def fit_seed(seed: int, source_id: str, spec: ModelSpec, replicate: int = 0) -> int:
    """The sampler seed of one fit: a content hash of the run's seed, the source, the model and the replicate.

    Python's ``hash`` is salted per process, so it cannot make a path repeatable; this is.

    >>> from astrorag.fit.spec import baseline
    >>> fit_seed(1, "11219", baseline(5.43)) == fit_seed(1, "11219", baseline(5.43))
    True
    >>> fit_seed(1, "11219", baseline(5.43)) != fit_seed(2, "11219", baseline(5.43))
    True
    """
    text = f"{seed}|{source_id}|{spec.describe()}|{replicate}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


#: A posterior whose median lies in the outer tenth of its prior range (in the prior's own scale, log for a
#: log-uniform prior) is "at the edge": the prior, not the data, sets it (one criterion for every parameter).
EDGE_FRACTION = 0.9
#: On a log-uniform prior, a median within this factor of an end is at that edge too, however wide the range:
#: a 17 Myr age on a 10 Myr floor is set by the floor.
EDGE_LOG_FACTOR = 2.0
#: Below this chi-square probability (dof = bands - free parameters) a fit is "poor": the model cannot make the
#: photometry within its errors (0.1 %, about 3.3 sigma one-sided).
POOR_FIT_P = 1e-3


@dataclass
class FitResult:
    """What one fit gives back. ``model_ujy`` is the model flux per band at the best-fit sample (uJy).

    ``seconds`` is the fit's CPU time (wall time for a fitter that runs another program). ``priors`` holds
    each sampled parameter's prior as ``(low, high, scale)`` with scale ``"linear"`` or ``"log"``;
    ``log_evidence_err`` is the sampler's own error of ln Z; ``seed`` the sampler seed used.
    """

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
    log_evidence_err: float | None = None
    priors: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    seed: int | None = None
    converged: bool = True     # False: the sampler stopped at its likelihood-call cap
    #: the error-inflation factor's posterior {p16, p50, p84} (fit/likelihood.py), None for a fitter without one
    inflation: dict[str, float] | None = None

    @property
    def dof(self) -> int:
        return self.n_bands - self.n_free

    @property
    def chi2_red(self) -> float:
        return self.chi2 / max(self.dof, 1)

    @property
    def inflation_p50(self) -> float | None:
        """The median factor the fit errors needed (1: none); None when the fitter has no mismatch term."""
        return None if not self.inflation else float(self.inflation["p50"])

    @property
    def chi2_red_inflated(self) -> float | None:
        """chi2_red with the errors inflated by the median factor (about 1 for a fit the likelihood accepts)."""
        s = self.inflation_p50
        return None if s is None else self.chi2_red / s ** 2

    @property
    def rejected(self) -> str:
        """Why the data reject this fit even with inflated errors, or ``""`` (fit/likelihood.py)."""
        return LIKELIHOOD.rejects(self.inflation_p50, self.chi2, self.dof)

    @property
    def at_prior_edge(self) -> dict[str, str]:
        """Parameters whose posterior median sits in the outer tenth of the prior: ``{name: "upper"|"lower"}``."""
        edges = {}
        for name, (lo, hi, scale) in sorted(self.priors.items()):
            if name == INFLATION_NAME:
                continue   # the likelihood's own term: its verdict is ``rejected``
            where = prior_edge(self.posterior.get(name), lo, hi, scale)
            # A pile-up at zero of a quantity that cannot be negative (A_V = 0: no dust) is the physics, not
            # the prior speaking.
            if where and not (where == "lower" and lo == 0 and scale == "linear"):
                edges[name] = where
        return edges

    @property
    def quality(self) -> str:
        """A verdict a reader can act on: "adequate", "poor: chi2_red 11.2 (p = 1e-08)", and/or
        "prior-limited: dust:Av at its upper prior edge"."""
        parts = [] if self.converged else ["unconverged: the sampler stopped at its cap of likelihood calls, so "
                                           "its evidence and posterior are not to be trusted"]
        p = chi2_probability(self.chi2, self.dof)
        rejected, s = self.rejected, self.inflation_p50
        if self.dof <= 0:
            parts.append(f"unconstrained: {self.n_free} free parameters for {self.n_bands} bands")
        elif rejected:
            parts.append(f"no model fits; best available: chi2_red {self.chi2_red:.1f} (p = {p:.0e}), {rejected}")
        elif s is None and p < POOR_FIT_P:
            parts.append(f"poor: chi2_red {self.chi2_red:.1f} (p = {p:.0e})")
        edges = self.at_prior_edge
        if edges:
            parts.append("prior-limited: " + ", ".join(f"{name} at its {side} prior edge"
                                                       for name, side in edges.items()))
        inflated = f" (errors inflated x{s:.2f})" if s is not None else ""
        return "; ".join(parts) or f"adequate: chi2_red {self.chi2_red:.2f}{inflated}"

    @property
    def bic(self) -> float:
        """Schwarz's criterion: chi2 + k ln n (for fitters with no evidence)."""
        return self.chi2 + self.n_free * math.log(max(self.n_bands, 1))

    def to_dict(self) -> dict[str, Any]:
        return {"fitter": self.fitter, "model": self.spec.to_dict(), "chi2": round(self.chi2, 3),
                "chi2_red": round(self.chi2_red, 3), "n_bands": self.n_bands, "n_free": self.n_free,
                "log_evidence": None if self.log_evidence is None else round(self.log_evidence, 3),
                "log_evidence_err": None if self.log_evidence_err is None else round(self.log_evidence_err, 3),
                "bic": round(self.bic, 3), "seconds": round(self.seconds, 1), "seed": self.seed,
                "converged": self.converged,
                "inflation": self.inflation,
                "chi2_red_inflated": None if self.chi2_red_inflated is None else round(self.chi2_red_inflated, 3),
                "rejected_by_data": self.rejected or None,
                "posterior": self.posterior, "at_prior_edge": self.at_prior_edge, "quality": self.quality,
                "model_ujy": [None if not np.isfinite(v) else round(float(v), 6) for v in self.model_ujy],
                "not_represented": self.not_represented}


def significant(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant figures (posteriors span 1e-19 to 1e13).

    >>> significant(3.14159e-19), significant(12345.6), significant(0.0)
    (3.14e-19, 12300.0, 0.0)
    """
    if not math.isfinite(value) or value == 0:
        return float(value)
    return float(f"{value:.{digits}g}")


def chi2_probability(chi2: float, dof: int) -> float:
    """P(chi-square >= ``chi2``) for ``dof`` degrees of freedom (Wilson & Hilferty 1931's cube-root normal
    approximation, good to a few per cent in p down to 1e-10 for dof >= 2; no scipy needed).

    >>> round(chi2_probability(10.0, 10), 2), chi2_probability(100.0, 10) < 1e-10
    (0.44, True)
    """
    if dof <= 0:
        return 1.0
    k = float(dof)
    z = ((chi2 / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def prior_edge(posterior: dict[str, float] | None, lo: float, hi: float, scale: str = "linear") -> str:
    """``"upper"`` or ``"lower"`` when the posterior median is in the outer tenth of the prior (or, on a log
    prior, within :data:`EDGE_LOG_FACTOR` of an end), else ``""``.

    >>> prior_edge({"p16": 0.85, "p50": 0.88, "p84": 0.89}, 0.0, 0.891)
    'upper'
    >>> prior_edge({"p50": 0.011}, 0.01, 1.0, "log"), prior_edge({"p50": 0.4}, 0.0, 0.891)
    ('lower', '')
    >>> prior_edge({"p50": 0.017}, 0.01, 1.0, "log")   # 17 Myr on a 10 Myr floor
    'lower'
    """
    if not posterior or not hi > lo:
        return ""
    median = posterior["p50"]
    if scale == "log":
        if lo <= 0 or median <= 0:
            return ""
        if median <= lo * EDGE_LOG_FACTOR and hi / lo > EDGE_LOG_FACTOR ** 2:
            return "lower"
        if median >= hi / EDGE_LOG_FACTOR and hi / lo > EDGE_LOG_FACTOR ** 2:
            return "upper"
        lo, hi, median = math.log10(lo), math.log10(hi), math.log10(median)
    position = (median - lo) / (hi - lo)
    if position >= EDGE_FRACTION:
        return "upper"
    if position <= 1 - EDGE_FRACTION:
        return "lower"
    return ""


def chi2_of(phot: Photometry, model: np.ndarray) -> tuple[float, int]:
    """Chi-square of one source over its measured bands, with the fit errors (upper limits count when the
    model exceeds them)."""
    f, e, m = phot.flux[0], phot.fit_err[0], np.asarray(model, dtype=float)
    use = np.isfinite(f) & np.isfinite(e) & (e > 0) & np.isfinite(m)
    upper = phot.upper[0].astype(bool)
    resid = np.where(upper, np.maximum(m - f, 0.0), f - m)
    return float(np.sum((resid[use] / e[use]) ** 2)), int(use.sum())


class Fitter:
    """Base class of the SED fitters. Subclasses set ``name`` and implement :meth:`fit`.

    ``options`` says how the sampler runs (live points: tiny in tests, a few hundred for science; the seed).
    """

    name = "base"
    gives_evidence = False
    #: what the fit cache keys on besides the options: bump it when a fit's result changes for the same input
    version = ""

    def __init__(self, options: SamplerOptions | None = None):
        self.options = options or SamplerOptions()

    @property
    def n_live(self) -> int:
        return self.options.n_live

    def not_representable(self, spec: ModelSpec) -> list[str]:
        """Parts of ``spec`` this fitter cannot build, in words (empty when it can build all of it)."""
        return []

    def unkept_change(self, old: ModelSpec, new: ModelSpec) -> str:
        """Why the change from ``old`` to ``new`` would not mean in this fitter what it means in the rule
        vocabulary (``""`` when it would): such a change is not refitted, so it never reaches rule learning."""
        return ""

    def edge_symptoms(self, result: FitResult) -> list[str]:
        """Symptoms the posterior shows (a parameter piled against its prior bound), in the rule vocabulary."""
        return []

    def translate(self, spec: ModelSpec) -> Any:
        """The fitter's own configuration for ``spec`` (two specs it builds alike are one model to it)."""
        return spec

    def fit(self, phot: Photometry, spec: ModelSpec, workdir: str | None = None,
            replicate: int = 0) -> FitResult:
        """Fit ``spec`` to one source (``phot``, a one-row table from :meth:`Photometry.source`, whose
        ``fit_err`` are the errors fitted); ``replicate`` numbers independent repeats (another seed)."""
        raise NotImplementedError
