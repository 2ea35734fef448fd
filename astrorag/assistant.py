"""Answering questions: retrieve evidence, let a writer (a language model or the extractive answerer)
write, keep only honest citations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

from .graph.rulebook import RuleBook
from .graph.retrieve import graph_search, rule_to_evidence
from .index.embed import Embedder
from .index.embedders import get_query_embedder
from .index.retrieve import Retriever
from .index.store import Index
from .ingest.sample import build_sample_index
from .llm import LLMBackend, get_backend
from .llm.extractive import ExtractiveAnswerer
from .llm.prompt import build_messages, check_citations, count_tokens
from .settings import Settings
from .types import Answer, Evidence, QueryParams, number_evidence

#: Tokens kept free in the context window for the model's reply.
ANSWER_TOKENS = 1024


class Writer(Protocol):
    """What writes an answer: an :class:`LLMBackend` or the :class:`ExtractiveAnswerer`."""

    name: str
    model: str

    def answer(self, question: str, evidence: list[Evidence], history: list[dict] | None = None) -> Iterator[str]:
        ...


@dataclass
class Prepared:
    """What one question sends to the writer: the numbered evidence, the chat messages and any notices."""

    question: str
    evidence: list[Evidence]
    messages: list[dict]
    prompt_tokens: int | None = None
    notices: list[str] = field(default_factory=list)
    no_evidence: bool = False
    closest: float | None = None  # cosine of the question to its closest passage


class Assistant:
    """The question-answering entry point used by the CLI, the app and the evaluation harness.

    The default index is built from the bundled sample corpus the first time it is needed. Per-call
    options (k, retrieval mode, filters) travel in :class:`~astrorag.types.QueryParams`, so one
    Assistant (one open index, one backend probe) serves every call.

    Examples
    --------
    >>> a = Assistant(Settings(), backend="extractive")  # doctest: +SKIP
    >>> answer = a.ask("What powers little red dots?", QueryParams(k=4))  # doctest: +SKIP
    >>> [c.arxiv_id for c in answer.citations]  # doctest: +SKIP
    """

    def __init__(self, settings: Settings, backend: str | None = None, embedder: Embedder | None = None,
                 llm: LLMBackend | None = None, purpose: str = "ask"):
        self.settings = settings
        if not Index.exists(settings) and settings.index_name == "default":
            build_sample_index(settings, embedder)
        # Questions are embedded without torch when the index's model has a cached fp32 export.
        self.embedder = embedder or get_query_embedder(settings)
        self.index = Index.open(settings)
        self.retriever = Retriever(self.index, self.embedder, settings)
        self.graph: RuleBook = RuleBook.load(settings.index_path)  # the rules only: no networkx on the ask path
        self.notices: list[str] = []
        self.last_prepared: Prepared | None = None
        # e.g. a deleted chroma/ folder: say so instead of answering from keywords alone
        if notice := self.index.missing_vectors_notice():
            self.notices.append(f"notice: {notice}")
        if llm is None:
            selected = get_backend(settings, purpose, backend)
            llm = selected.llm
            if selected.notice:
                self.notices.append(selected.notice)
        self.llm: LLMBackend | None = llm
        self.writer: Writer = llm if llm is not None else ExtractiveAnswerer(self.embedder)

    def retrieve(self, question: str, params: QueryParams | None = None) -> list[Evidence]:
        """Passages (keys 1..k), the indexed papers behind the linked rules (k+1..), then the rules (R1..)."""
        p = (params or QueryParams()).resolve(self.settings)
        passages = self.search_passages(question, p)
        if not p.graph_rules or p.graph_rules <= 0:
            return number_evidence(passages)
        matches = graph_search(self.graph, question, limit=p.graph_rules)
        rules = [rule_to_evidence(m, "R") for m in matches]
        present = {e.doc_id for e in passages}
        wanted = [d for d in dict.fromkeys(c for m in matches for c in m.rule.citations) if d not in present]
        papers = self.retriever.paper_evidence(wanted)
        return number_evidence(passages + papers, rules)

    def prepare(self, question: str, params: QueryParams | None = None,
                history: list[dict] | None = None) -> Prepared:
        """Retrieve and build exactly the prompt that :meth:`stream` sends (``eval cost`` prices this).

        With a language model, passages that would not fit ``num_ctx`` (less room for the reply) are
        dropped from the end, lowest-ranked first, and a notice says so.
        """
        evidence = self.retrieve(question, params)
        closest = self.closest_passage(question, evidence)
        if closest is not None and closest < self.settings.no_evidence_min_cosine \
                and not any(e.kind == "rule" for e in evidence):
            return Prepared(question, [], [], notices=[], no_evidence=True, closest=closest)
        messages = build_messages(question, evidence, history)
        notices = []
        if self.index.keyword.notice:
            notices.append(f"notice: {self.index.keyword.notice}")
            self.index.keyword.notice = ""
        if self.llm is None:
            return Prepared(question, evidence, messages, notices=notices)
        budget = self.settings.num_ctx - ANSWER_TOKENS
        tokens = count_tokens(messages)
        dropped = 0
        while tokens > budget and any(e.kind == "chunk" for e in evidence):
            last = max(i for i, e in enumerate(evidence) if e.kind == "chunk")
            evidence = evidence[:last] + evidence[last + 1:]
            dropped += 1
            messages = build_messages(question, evidence, history)
            tokens = count_tokens(messages)
        if dropped:
            notices.append(f"{dropped} lowest-ranked passage(s) left out to fit num_ctx={self.settings.num_ctx} "
                           f"tokens; raise --num-ctx / ASTRORAG_NUM_CTX or lower --k")
        return Prepared(question, evidence, messages, tokens, notices)

    def search_passages(self, question: str, p: QueryParams) -> list[Evidence]:
        """Passages for a question, with the optional model-side rewriting and re-scoring (see rewrite.py)."""
        if not (p.rewrite or p.rescore) or self.llm is None:
            if p.rewrite or p.rescore:
                note = "notice: query rewriting and re-scoring need a language model; plain retrieval was used"
                if note not in self.notices:
                    self.notices.append(note)
            return self.retriever.search(question, k=p.k, mode=p.mode, filters=p.filters)
        from .rewrite import rescore, rewrite_query

        query = rewrite_query(self.llm, question, p.rewrite) if p.rewrite else question
        if not p.rescore:
            return self.retriever.search(query, k=p.k, mode=p.mode, filters=p.filters)
        candidates = self.retriever.search(query, k=2 * p.k, mode=p.mode, filters=p.filters)
        kept, notice = rescore(self.llm, question, candidates, p.k)
        if notice:
            self.notices.append(f"notice: {notice}")
        return kept

    def closest_passage(self, question: str, evidence: list[Evidence]) -> float | None:
        """Cosine of the question to the closest passage in the index (None for an empty index)."""
        dense = [e.scores["dense"] for e in evidence if "dense" in e.scores]
        if dense:
            return max(dense)
        hits = self.retriever.search(question, k=1, mode="dense")  # e.g. a bm25-only question
        return hits[0].scores.get("dense") if hits else None

    def stream(self, question: str, params: QueryParams | None = None,
               history: list[dict] | None = None) -> Iterator[str | Answer]:
        """Yield the answer text as it is written, then the checked :class:`Answer` as the last item."""
        prepared = self.prepare(question, params, history)
        self.last_prepared = prepared  # what a reproducibility bundle records
        if prepared.no_evidence:
            text = no_evidence_text(question, prepared.closest, self.settings.no_evidence_min_cosine)
            yield text
            yield Answer(question=question, text=text, evidence=[], citations=[], backend=self.writer.name,
                         model=self.writer.model, settings_fingerprint=self.settings.fingerprint(),
                         notices=list(self.notices), no_evidence=True)
            return
        pieces: list[str] = []
        for piece in self.writer.answer(question, prepared.evidence, history):
            pieces.append(piece)
            yield piece
        yield self._finish(prepared, "".join(pieces))

    def ask(self, question: str, params: QueryParams | None = None, history: list[dict] | None = None) -> Answer:
        *_, answer = self.stream(question, params, history)
        assert isinstance(answer, Answer)
        return answer

    def _finish(self, prepared: Prepared, text: str) -> Answer:
        check = check_citations(text, prepared.evidence)
        notices = [*self.notices, *prepared.notices]
        if check.dropped:
            notices.append(f"dropped citation(s) of sources that were not retrieved: {', '.join(check.dropped)}")
        if check.rewritten:
            notices.append(f"rewrote identifiers of retrieved papers to their keys: {', '.join(check.rewritten)}")
        return Answer(question=prepared.question, text=check.text, evidence=prepared.evidence,
                      citations=check.used, backend=self.writer.name, model=self.writer.model,
                      settings_fingerprint=self.settings.fingerprint(), dropped_citations=check.dropped,
                      notices=notices)

    def cited_documents(self, answer: Answer) -> list:
        """The indexed papers an answer cites, in citation order (for BibTeX)."""
        ids = list(dict.fromkeys(e.doc_id for e in answer.citations if e.kind == "chunk" and e.doc_id))
        docs = self.index.documents(ids)
        return [docs[i] for i in ids if i in docs]

    def close(self) -> None:
        self.index.close()


def no_evidence_text(question: str, closest: float | None, threshold: float) -> str:
    """What to say when the index does not cover a question: plainly, with a way to add the literature.

    >>> print(no_evidence_text("What is a sourdough starter?", 0.17, 0.42).splitlines()[0])
    The indexed literature does not cover this question: its closest passage is too far from it (cosine 0.17 < 0.42), so there is nothing to cite.
    """
    import re

    words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", question)
             if w.lower() not in {"what", "which", "when", "where", "does", "with", "that", "this", "from", "have",
                                  "there", "their", "about", "would", "could", "should", "into"}][:4]
    terms = " ".join(words) or question
    return (f"The indexed literature does not cover this question: its closest passage is too far from it (cosine "
            f"{closest:.2f} < {threshold:.2f}), so there is nothing to cite.\n"
            f"To add papers on it: `astrorag ingest arxiv --query 'all:\"{terms}\"'` or "
            f"`astrorag ingest ads --query 'abs:\"{terms}\"'`.")
