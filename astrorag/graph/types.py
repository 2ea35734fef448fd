"""The rule graph's nouns: what a rule says to do, the rule itself, and an action ranked for a source."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .papers import cite, paper_year


@dataclass(frozen=True)
class Action:
    """What a rule says to do: adjust a CIGALE parameter, or change a module, in a direction."""

    direction: str
    parameter: str | None = None
    module: str | None = None
    range: str = ""
    change: str = ""
    #: other parameters set together with this one, as (parameter, value) pairs, e.g. lambda_fracAGN with
    #: fracAGN: CIGALE mechanics that make the action mean what it says
    also: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "also", tuple((str(p), str(v)) for p, v in (self.also or ())))

    def describe(self) -> str:
        target = self.parameter or self.module or "the fit"
        where = f" ({self.module})" if self.parameter and self.module else ""
        words = {"increase": "increase", "decrease": "decrease", "widen": "widen the grid of",
                 "narrow": "narrow the grid of", "fix": "fix", "free": "free", "check": "check",
                 "add_module": "add the module", "switch_module": "switch to the module",
                 "remove_module": "remove the module"}
        text = f"{words.get(self.direction, self.direction)} {target}{where}"
        if self.range:
            text += f" to {self.range}" if self.direction in ("increase", "decrease", "widen", "fix") else f": {self.range}"
        if self.change:
            text += f": {self.change}"
        if self.also:
            text += "; with " + ", ".join(f"{p} = {v}" for p, v in self.also)
        return text


@dataclass
class Rule:
    """A distilled SED-fitting rule with provenance.

    ``confidence`` is the mean of a Beta posterior: the prior (``prior_confidence`` worth
    ``PRIOR_WEIGHT`` pseudo-outcomes) updated by fit outcomes (``successes``, ``failures``).

    Examples
    --------
    >>> r = Rule("r1", ("uv_overestimated",), Action("increase", "E_BV_lines"), "why", 0.8, ("2409.14807",), "seed")
    >>> r.confidence
    0.8
    >>> r.successes, r.failures = 5, 0
    >>> round(r.confidence, 3)
    0.867
    """

    rule_id: str
    condition: tuple[str, ...]
    action: Action
    rationale: str
    prior_confidence: float
    citations: tuple[str, ...]
    origin: str  # seed | distilled | learned
    supports: tuple[str, ...] = ()
    contradicted_by: tuple[str, ...] = ()
    dissent: str = ""  # what the papers in contradicted_by argue
    superseded_by: str = ""  # what the field (or a newer rule) has replaced this reading with, if anything
    successes: int = 0
    failures: int = 0
    support_count: int = 1  # how many times the rule was found (distillation) or proposed

    PRIOR_WEIGHT = 10.0

    @property
    def contested(self) -> bool:
        """A rule with papers against it; every answer or advice that uses it says so, and by whom."""
        return bool(self.contradicted_by)

    @property
    def confidence(self) -> float:
        a = self.prior_confidence * self.PRIOR_WEIGHT + self.successes
        b = (1 - self.prior_confidence) * self.PRIOR_WEIGHT + self.failures
        return a / (a + b)

    @property
    def signature(self) -> str:
        """Equal for rules that say the same thing (same symptoms, parameter, module, direction)."""
        return "|".join([",".join(sorted(self.condition)), self.action.parameter or "", self.action.module or "",
                         self.action.direction])

    @staticmethod
    def cite(ids) -> str:
        """Paper ids with their authors and years, as a rule shows them."""
        return cite(ids)

    def describe(self) -> str:
        from .vocabulary import SYMPTOMS

        when = "; ".join(SYMPTOMS[s][0] if s in SYMPTOMS else s.replace("_", " ") for s in self.condition)
        return f"When {when}: {self.action.describe()}."

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "condition": list(self.condition), "action": asdict(self.action),
                "rationale": self.rationale, "confidence": round(self.confidence, 4),
                "prior_confidence": self.prior_confidence, "successes": self.successes,
                "failures": self.failures, "support_count": self.support_count, "origin": self.origin,
                "citations": list(self.citations), "supports": list(self.supports),
                "contradicted_by": list(self.contradicted_by), "dissent": self.dissent,
                "contested": self.contested, "papers_for": list(self.citations),
                "papers_against": list(self.contradicted_by), "superseded_by": self.superseded_by,
                "paper_years": {i: paper_year(i) for i in (*self.citations, *self.contradicted_by) if paper_year(i)},
                "summary": self.describe()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        return cls(rule_id=data["rule_id"], condition=tuple(data["condition"]), action=Action(**data["action"]),
                   rationale=data["rationale"], prior_confidence=data["prior_confidence"],
                   citations=tuple(data["citations"]), origin=data["origin"],
                   supports=tuple(data.get("supports", ())), contradicted_by=tuple(data.get("contradicted_by", ())),
                   dissent=data.get("dissent", ""), superseded_by=data.get("superseded_by", ""),
                   successes=data.get("successes", 0), failures=data.get("failures", 0),
                   support_count=data.get("support_count", 1))


@dataclass
class RankedAction:
    """A fitting action proposed by a rule, with why it ranks where it does."""

    rank: int
    rule_id: str
    direction: str
    parameter: str | None
    module: str | None
    range: str
    change: str
    summary: str
    score: float
    confidence: float
    matched_symptoms: list[str]
    citations: list[str]
    rationale: str
    supports: list[str]
    contradicted_by: list[str] = field(default_factory=list)
    dissent: str = ""
    also: list[list[str]] = field(default_factory=list)
    match: Any = field(default=None, repr=False, compare=False)  # the RuleMatch it came from (not serialised)

    @property
    def contested(self) -> bool:
        return bool(self.contradicted_by)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "match"}
        data["contested"] = self.contested
        return data
