"""The SED advisor's nouns: one source's photometry as shown, and what the advisor says about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..graph.types import RankedAction


@dataclass
class SED:
    """One source's photometry: bands with pivot wavelengths, fluxes and errors in uJy, upper limits."""

    source_id: str
    redshift: float | None
    bands: list[str]
    wavelength_um: list[float]
    flux_ujy: list[float | None]
    error_ujy: list[float | None]
    upper_limit: list[bool]
    model_ujy: list[float | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Advice:
    """What the SED advisor says about one source."""

    source_id: str
    redshift: float | None
    sed: SED
    diagnostics: dict[str, Any]
    criteria: list[dict[str, Any]]
    is_lrd: bool | None
    symptoms: list[str]
    actions: list[RankedAction]
    interpretations: list[dict[str, Any]]
    narrative: str
    backend: str
    plot: str | None = None
    notices: list[str] = field(default_factory=list)
    lrd_score: float | None = None
    lrd_votes: list[str] = field(default_factory=list)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)  # UV/optical line fits (m vs log10 rest um)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.source_id, "redshift": self.redshift, "is_lrd": self.is_lrd,
                "lrd_score": self.lrd_score, "lrd_votes": self.lrd_votes, "fits": self.fits,
                "diagnostics": self.diagnostics, "criteria": self.criteria, "symptoms": self.symptoms,
                "actions": [a.to_dict() for a in self.actions], "interpretations": self.interpretations,
                "narrative": self.narrative, "backend": self.backend, "plot": self.plot,
                "notices": self.notices, "sed": self.sed.to_dict()}
