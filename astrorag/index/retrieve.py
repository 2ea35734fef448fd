"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates fused by reciprocal rank."""

from __future__ import annotations

from ..errors import ConfigError
from ..settings import Settings
from ..types import bibcode_parts
from .embed import Embedder
from .store import Index
from .types import Evidence, Filters, number_evidence
from .vectors import Hit

MODES = ("dense", "bm25", "fused")


def reciprocal_rank_fusion(rankings: dict[str, list[Hit]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse ranked lists: score(d) = sum over lists of 1 / (k + rank), rank starting at 1.

    Examples
    --------
    >>> fused = reciprocal_rank_fusion({"a": [Hit("x", 1), Hit("y", 0.5)], "b": [Hit("y", 9), Hit("z", 1)]})
    >>> [doc for doc, _ in fused]
    ['y', 'x', 'z']
    """
    scores: dict[str, float] = {}
    for hits in rankings.values():
        for rank, hit in enumerate(hits, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def venue_of(doc) -> str | None:
    """Where a paper appeared: the journal of its bibcode, else its arXiv category.

    >>> from astrorag.index.types import Document
    >>> venue_of(Document.create(title="t", bibcode="2024ApJ...968...38K"))
    'ApJ'
    >>> venue_of(Document.create(title="t", arxiv_id="2501.00001", categories=("astro-ph.GA",)))
    'arXiv astro-ph.GA'
    """
    parts = bibcode_parts(doc.bibcode or "")
    if parts:
        return parts[0]
    if doc.arxiv_id:
        return f"arXiv {doc.categories[0]}" if doc.categories else "arXiv"
    return None


class Retriever:
    """Searches one index.

    Examples
    --------
    >>> r = Retriever(index, embedder, settings)  # doctest: +SKIP
    >>> evidence = r.search("What powers little red dots?", k=5, filters=Filters(year_min=2024))  # doctest: +SKIP
    """

    def __init__(self, index: Index, embedder: Embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def rankings(self, query: str, mode: str, filters: Filters, candidates: int) -> dict[str, list[Hit]]:
        if mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {mode!r}; valid names: {', '.join(MODES)}")
        out: dict[str, list[Hit]] = {}
        if mode in ("dense", "fused"):
            vector = self.embedder.encode_query(query)
            out["dense"] = self.index.dense_search(vector, candidates, filters.year_min, filters.year_max,
                                                   filters.category)
        if mode in ("bm25", "fused"):
            out["bm25"] = self.index.bm25_search(query, candidates, filters.year_min, filters.year_max,
                                                 filters.category)
        return out

    def search(self, query: str, k: int | None = None, mode: str | None = None,
               filters: Filters | None = None) -> list[Evidence]:
        """Return the top-k chunks as Evidence with per-retriever scores and ranks and keys ``[1]..[k]``."""
        k = k or self.settings.retrieval.k
        mode = mode or self.settings.retrieval.mode
        filters = filters or Filters.from_settings(self.settings)
        rankings = self.rankings(query, mode, filters, max(self.settings.retrieval.candidates, k))
        if mode == "fused":
            ordered = reciprocal_rank_fusion(rankings, self.settings.retrieval.rrf_k)
        else:
            ordered = [(h.chunk_id, h.score) for h in rankings[mode]]
        if self.settings.retrieval.weight_recency > 0 or self.settings.retrieval.weight_citations > 0:
            ordered = self._reweight(ordered)
        return number_evidence(self._to_evidence(ordered[:k], rankings))

    def _reweight(self, ordered: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Boost recent and much-cited papers, as pathfinder does (off unless a weight is set).

        score * (1 + w_recency * exp(-age / 5 yr) + w_citations * log(1 + c) / log(1 + c_max)).
        """
        import math
        import time as _time

        weights = self.index.doc_weights()
        chunks = self.index.chunks([cid for cid, _ in ordered])
        now = _time.gmtime().tm_year
        c_max = max((c or 0 for _, c in weights.values()), default=0)
        ranking = self.settings.retrieval
        rescored = []
        for cid, score in ordered:
            year, cites = weights.get(chunks[cid].doc_id, (None, None)) if cid in chunks else (None, None)
            recency = math.exp(-max(now - year, 0) / 5.0) if year else 0.0
            citation = math.log1p(cites or 0) / math.log1p(c_max) if c_max else 0.0
            boost = 1 + ranking.weight_recency * recency + ranking.weight_citations * citation
            rescored.append((cid, score * boost))
        return sorted(rescored, key=lambda item: (-item[1], item[0]))

    def paper_evidence(self, doc_ids: list[str]) -> list[Evidence]:
        """The opening chunk of each paper that is in the index (papers reached through the rule graph)."""
        first = self.index.first_chunks(doc_ids)
        ordered = [(first[d], 0.0) for d in doc_ids if d in first]
        return self._to_evidence(ordered, {"graph": [Hit(cid, 0.0) for cid, _ in ordered]})

    def _to_evidence(self, ordered: list[tuple[str, float]], rankings: dict[str, list[Hit]]) -> list[Evidence]:
        chunks = self.index.chunks([cid for cid, _ in ordered])
        docs = self.index.documents({c.doc_id for c in chunks.values()})
        per: dict[str, dict[str, tuple[int, float]]] = {}
        for name, hits in rankings.items():
            for rank, hit in enumerate(hits, start=1):
                per.setdefault(hit.chunk_id, {})[name] = (rank, hit.score)
        evidence = []
        for cid, fused in ordered:
            chunk = chunks.get(cid)
            if chunk is None:  # a vector whose ledger row was lost mid-write; skip rather than cite nothing
                continue
            doc = docs[chunk.doc_id]
            info = per.get(cid, {})
            evidence.append(Evidence(
                key="", kind="chunk", text=chunk.text, doc_id=doc.doc_id, chunk_id=cid,
                title=doc.title, authors=doc.authors, year=doc.year, arxiv_id=doc.arxiv_id,
                bibcode=doc.bibcode, url=doc.url, venue=venue_of(doc), citation_count=doc.citation_count,
                scores={n: s for n, (_, s) in info.items()}, ranks={n: r for n, (r, _) in info.items()},
                fused_score=fused))
        return evidence
