"""The SED advisor's nouns: what the advisor says about one source (its photometry is a one-source
:class:`~astrorag.sed.photometry.Photometry`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..graph.types import RankedAction

if TYPE_CHECKING:
    from .photometry import Photometry


@dataclass
class Advice:
    """What the SED advisor says about one source; ``sed`` is its photometry (one row, with any model)."""

    source_id: str
    redshift: float | None
    sed: Photometry
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
    lrd_likeness: float | None = None
    #: the model's narrative was set aside (an echo, a loop, cut at the token limit); why
    degenerate: bool = False
    degenerate_reason: str = ""
    lrd_votes: list[str] = field(default_factory=list)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)  # UV/optical line fits (m vs log10 rest um)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.source_id, "redshift": self.redshift, "is_lrd": self.is_lrd,
                "lrd_score": self.lrd_score, "lrd_likeness": self.lrd_likeness, "lrd_votes": self.lrd_votes, "fits": self.fits,
                "diagnostics": self.diagnostics, "criteria": self.criteria, "symptoms": self.symptoms,
                "actions": [a.to_dict() for a in self.actions], "interpretations": self.interpretations,
                "narrative": self.narrative, "backend": self.backend, "plot": self.plot,
                "degenerate": self.degenerate, "degenerate_reason": self.degenerate_reason,
                "notices": self.notices, "sed": self.sed.to_dict()}
