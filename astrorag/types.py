"""Typed objects that cross module boundaries (never magic-key dicts)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_ARXIV_NEW = re.compile(r"^\d{4}\.\d{4,5}$")
_ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*/\d{7}$", re.IGNORECASE)


def content_hash(*parts: str, size: int = 16) -> str:
    """Stable hex digest of some text parts, used for content-addressed ids.

    >>> content_hash("a", "b") == content_hash("a", "b") != content_hash("ab")
    True
    """
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:size]


def normalize_arxiv_id(raw: str | None) -> str | None:
    """Return a bare arXiv id without URL prefix, ``arXiv:`` label or version, or None.

    >>> normalize_arxiv_id("http://arxiv.org/abs/2509.07066v1")
    '2509.07066'
    >>> normalize_arxiv_id("arXiv:astro-ph/0601001v2")
    'astro-ph/0601001'
    >>> normalize_arxiv_id("10.1093/mnras/x") is None
    True
    """
    if not raw:
        return None
    text = str(raw).strip()
    text = re.sub(r"^https?://(export\.)?arxiv\.org/(abs|pdf)/", "", text)
    text = re.sub(r"^arxiv:", "", text, flags=re.IGNORECASE)
    text = re.sub(r"v\d+$", "", text).removesuffix(".pdf")
    if _ARXIV_NEW.match(text) or _ARXIV_OLD.match(text):
        return text
    return None


@dataclass(frozen=True)
class Problem:
    """A record or row that could not be read: where (file and line) and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Document:
    """One paper (or file) as astrorag stores it.

    ``doc_id`` is stable across sources: the arXiv id, else the bibcode, else the DOI, else a
    hash of the content, so the same paper ingested twice is the same document.

    Examples
    --------
    >>> d = Document.create(title="Little red dots", abstract="Compact red sources.", arxiv_id="2401.09981")
    >>> d.doc_id, d.url
    ('2401.09981', 'https://arxiv.org/abs/2401.09981')
    """

    doc_id: str
    title: str
    abstract: str = ""
    body: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    arxiv_id: str | None = None
    bibcode: str | None = None
    doi: str | None = None
    categories: tuple[str, ...] = ()
    source: str = "file"
    citation_count: int | None = None
    published: str | None = None
    url: str | None = None

    @classmethod
    def create(cls, *, title: str, abstract: str = "", body: str = "", **fields: Any) -> "Document":
        """Build a Document, deriving ``doc_id`` and ``url`` from its identifiers."""
        arxiv_id = normalize_arxiv_id(fields.pop("arxiv_id", None))
        bibcode = (fields.pop("bibcode", None) or None)
        doi = (fields.pop("doi", None) or None)
        doc_id = arxiv_id or bibcode or (f"doi:{doi.lower()}" if doi else None) or \
            "sha:" + content_hash(title, abstract, body)
        url = fields.pop("url", None)
        if not url:
            if arxiv_id:
                url = f"https://arxiv.org/abs/{arxiv_id}"
            elif bibcode:
                url = f"https://ui.adsabs.harvard.edu/abs/{bibcode}"
            elif doi:
                url = f"https://doi.org/{doi}"
        fields["authors"] = tuple(fields.get("authors") or ())
        fields["categories"] = tuple(fields.get("categories") or ())
        return cls(doc_id=doc_id, title=" ".join(title.split()), abstract=abstract.strip(), body=body.strip(),
                   arxiv_id=arxiv_id, bibcode=bibcode, doi=doi, url=url, **fields)

    @property
    def text(self) -> str:
        """Abstract and body, the part that is chunked."""
        return "\n\n".join(p for p in (self.abstract, self.body) if p)

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes the stored chunks or their metadata."""
        return content_hash(self.title, self.text, str(self.year), ";".join(self.categories),
                            ";".join(self.authors), str(self.citation_count))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["authors"] = list(self.authors)
        data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Document":
        data = dict(data)
        data["authors"] = tuple(data.get("authors") or ())
        data["categories"] = tuple(data.get("categories") or ())
        return cls(**data)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document's text; ``chunk_id`` hashes the document id, position and text."""

    chunk_id: str
    doc_id: str
    position: int
    text: str
    section: str = ""

    @classmethod
    def create(cls, doc_id: str, position: int, text: str, section: str = "") -> "Chunk":
        return cls(content_hash(doc_id, str(position), section, text), doc_id, position, text, section)


@dataclass(frozen=True)
class Filters:
    """Metadata filters: publication year range and arXiv category (``astro-ph.GA``) or archive (``astro-ph``)."""

    year_min: int | None = None
    year_max: int | None = None
    category: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "Filters":
        return cls(settings.year_min, settings.year_max, settings.category)


@dataclass(frozen=True)
class QueryParams:
    """Per-call retrieval options, apart from :class:`~astrorag.settings.Settings` (which hold the defaults).

    ``None`` means "the setting's value", so one Assistant serves calls with different k, mode or filters.

    Examples
    --------
    >>> QueryParams(k=3, filters=Filters(year_min=2024)).resolve(type("S", (), {"k": 6, "retrieval_mode": "fused",
    ...     "graph_rules": 3, "year_min": None, "year_max": None, "category": None})()).k
    3
    """

    k: int | None = None
    mode: str | None = None
    filters: Filters | None = None
    graph_rules: int | None = None
    rewrite: str | None = None   # "hyde" or "keywords": the model rewrites the query first (needs a model)
    rescore: bool = False        # the model rates the candidates' relevance before the answer (needs a model)

    def resolve(self, settings: Any) -> "QueryParams":
        """Every field filled in from the settings where it is ``None``."""
        return QueryParams(k=self.k or settings.k, mode=self.mode or settings.retrieval_mode,
                           filters=self.filters or Filters.from_settings(settings),
                           graph_rules=settings.graph_rules if self.graph_rules is None else self.graph_rules,
                           rewrite=self.rewrite, rescore=self.rescore)


@dataclass
class Evidence:
    """A retrieved chunk (or rule) with its scores per retriever, the fused score and its citation key."""

    key: str
    kind: str  # "chunk" or "rule"
    text: str
    doc_id: str | None = None
    chunk_id: str | None = None
    rule_id: str | None = None
    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    arxiv_id: str | None = None
    bibcode: str | None = None
    url: str | None = None
    venue: str | None = None  # the journal (from the bibcode) or "arXiv astro-ph.GA"
    citation_count: int | None = None
    papers: tuple[str, ...] = ()  # for a rule: the papers behind it
    papers_against: tuple[str, ...] = ()  # for a contested rule: the papers arguing against it
    dissent: str = ""  # ... and what they argue
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    fused_score: float = 0.0

    @property
    def label(self) -> str:
        """Short human reference: first author and year, or the title."""
        if self.kind == "rule":
            return f"rule {self.rule_id}"
        who = self.authors[0].split(",")[0] if self.authors else ""
        ident = self.arxiv_id or self.bibcode or self.doc_id or ""
        head = f"{who} {self.year}".strip() if who else (str(self.year) if self.year else "")
        return f"{head} ({ident})" if head else ident

    def citation(self) -> dict[str, Any]:
        """The citation record printed by ``ask --json``."""
        return {"key": self.key, "kind": self.kind, "doc_id": self.doc_id, "rule_id": self.rule_id,
                "arxiv_id": self.arxiv_id, "bibcode": self.bibcode, "title": self.title,
                "authors": list(self.authors), "year": self.year, "url": self.url,
                "papers": list(self.papers), "papers_against": list(self.papers_against)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["authors"] = list(self.authors)
        data["papers"] = list(self.papers)
        data["papers_against"] = list(self.papers_against)
        return data


def number_evidence(passages: list[Evidence], rules: list[Evidence] = ()) -> list[Evidence]:
    """Give citation keys in one place: passages ``1..n`` in order, rules ``R1..``; returns one list.

    >>> ev = number_evidence([Evidence(key="x", kind="chunk", text="a")], [Evidence(key="y", kind="rule", text="b")])
    >>> [e.key for e in ev]
    ['1', 'R1']
    """
    for i, ev in enumerate(passages, start=1):
        ev.key = str(i)
    for i, ev in enumerate(rules, start=1):
        ev.key = f"R{i}"
    return [*passages, *rules]


@dataclass
class Answer:
    """An answer with the evidence it saw and the citations it actually used."""

    question: str
    text: str
    evidence: list[Evidence]
    citations: list[Evidence]
    backend: str
    model: str
    settings_fingerprint: str
    dropped_citations: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    no_evidence: bool = False  # nothing retrieved was relevant enough: the answer says so and cites nothing
    #: the model's reply was set aside (an echo of the prompt, a loop, cut at max_tokens, or empty): ``text``
    #: is then the extractive answer, ``degenerate_reason`` says why and ``rejected_reply`` keeps the reply
    degenerate: bool = False
    degenerate_reason: str = ""
    rejected_reply: str = ""
    #: prompt_tokens, completion_tokens, how they were counted, the context and how the prompt was fitted
    tokens: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "backend": self.backend,
            "model": self.model,
            "citations": [e.citation() for e in self.citations],
            "dropped_citations": self.dropped_citations,
            "notices": self.notices,
            "evidence": [e.to_dict() for e in self.evidence],
            "settings_fingerprint": self.settings_fingerprint,
            "no_evidence": self.no_evidence,
            "degenerate": self.degenerate,
            "degenerate_reason": self.degenerate_reason,
            "rejected_reply": self.rejected_reply,
            "prompt_tokens": self.tokens.get("prompt_tokens"),
            "completion_tokens": self.tokens.get("completion_tokens"),
            "tokens": self.tokens,
        }


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

    def describe(self) -> str:
        from .graph.vocabulary import SYMPTOMS

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
                "papers_against": list(self.contradicted_by), "summary": self.describe()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Rule":
        return cls(rule_id=data["rule_id"], condition=tuple(data["condition"]), action=Action(**data["action"]),
                   rationale=data["rationale"], prior_confidence=data["prior_confidence"],
                   citations=tuple(data["citations"]), origin=data["origin"],
                   supports=tuple(data.get("supports", ())), contradicted_by=tuple(data.get("contradicted_by", ())),
                   dissent=data.get("dissent", ""),
                   successes=data.get("successes", 0), failures=data.get("failures", 0),
                   support_count=data.get("support_count", 1))


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
