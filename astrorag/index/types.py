"""The literature's nouns: papers, chunks, retrieval options, evidence and answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..types import content_hash, normalize_arxiv_id, plain_text


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
    def create(cls, *, title: str, abstract: str = "", body: str = "", **fields: Any) -> Document:
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
        # Record text is data: no escape sequence or control character is stored, so none reaches an output.
        fields["authors"] = tuple(plain_text(str(a)) for a in (fields.get("authors") or ()))
        fields["categories"] = tuple(fields.get("categories") or ())
        title, abstract, body = plain_text(title), plain_text(abstract), plain_text(body)
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
    def from_dict(cls, data: dict[str, Any]) -> Document:
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
    def create(cls, doc_id: str, position: int, text: str, section: str = "") -> Chunk:
        return cls(content_hash(doc_id, str(position), section, text), doc_id, position, text, section)


@dataclass(frozen=True)
class Filters:
    """Metadata filters: publication year range and arXiv category (``astro-ph.GA``) or archive (``astro-ph``)."""

    year_min: int | None = None
    year_max: int | None = None
    category: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Filters:
        return cls(settings.retrieval.year_min, settings.retrieval.year_max, settings.retrieval.category)


@dataclass(frozen=True)
class QueryParams:
    """Per-call retrieval options, apart from :class:`~astrorag.settings.Settings` (which hold the defaults).

    ``None`` means "the setting's value", so one Assistant serves calls with different k, mode or filters.

    Examples
    --------
    >>> from astrorag.settings import Settings
    >>> QueryParams(k=3, filters=Filters(year_min=2024)).resolve(Settings(k=6)).k
    3
    """

    k: int | None = None
    mode: str | None = None
    filters: Filters | None = None
    graph_rules: int | None = None
    rewrite: str | None = None   # "hyde" or "keywords": the model rewrites the query first (needs a model)
    rescore: bool = False        # the model rates the candidates' relevance before the answer (needs a model)

    def resolve(self, settings: Any) -> QueryParams:
        """Every field filled in from the settings where it is ``None``."""
        return QueryParams(k=self.k or settings.retrieval.k, mode=self.mode or settings.retrieval.mode,
                           filters=self.filters or Filters.from_settings(settings),
                           graph_rules=settings.retrieval.graph_rules if self.graph_rules is None else self.graph_rules,
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
