"""Answering questions: retrieve evidence, let a backend write, keep only honest citations."""

from __future__ import annotations

from typing import Iterator

from .graph.model import RuleGraph, load_graph
from .graph.retrieve import graph_search, rule_to_evidence
from .index.embed import Embedder, get_embedder
from .index.retrieve import Filters, Retriever
from .index.store import Index
from .ingest.sample import build_sample_index
from .llm import LLMBackend, get_backend
from .llm.prompt import check_citations
from .settings import Settings
from .types import Answer, Evidence


class Assistant:
    """The question-answering entry point used by the CLI and the app.

    The default index is built from the bundled sample corpus the first time it is needed.

    Examples
    --------
    >>> a = Assistant(Settings(), backend="extractive")  # doctest: +SKIP
    >>> answer = a.ask("What powers little red dots?")  # doctest: +SKIP
    >>> [c.arxiv_id for c in answer.citations]  # doctest: +SKIP
    """

    def __init__(self, settings: Settings, backend: str | None = None, embedder: Embedder | None = None,
                 llm: LLMBackend | None = None):
        self.settings = settings
        self.embedder = embedder or get_embedder(settings)
        if not Index.exists(settings) and settings.index_name == "default":
            build_sample_index(settings, self.embedder)
        self.index = Index.open(settings)
        self.retriever = Retriever(self.index, self.embedder, settings)
        self.graph: RuleGraph = load_graph(settings.index_path)
        self.notices: list[str] = []
        if llm is None:
            selected = get_backend(backend or settings.backend, settings, self.embedder)
            llm = selected.backend
            if selected.notice:
                self.notices.append(selected.notice)
        self.llm = llm

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None) -> list[Evidence]:
        """Passages (keys 1..k), then the rules the question links to (R1..) and the indexed papers behind them."""
        evidence = self.retriever.search(question, k=k, filters=filters)
        if self.settings.graph_rules <= 0:
            return evidence
        matches = graph_search(self.graph, question, limit=self.settings.graph_rules)
        rules = [rule_to_evidence(m, f"R{i}") for i, m in enumerate(matches, start=1)]
        papers = [p for m in matches for p in m.rule.citations]
        present = {e.doc_id for e in evidence}
        extra = self.retriever.paper_evidence([p for p in dict.fromkeys(papers) if p not in present],
                                              start_key=len(evidence) + 1)
        return evidence + extra + rules

    def stream(self, question: str, history: list[dict] | None = None, k: int | None = None,
               filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yield the answer text as it is written, then the checked :class:`Answer` as the last item."""
        evidence = self.retrieve(question, k=k, filters=filters)
        pieces: list[str] = []
        for piece in self.llm.answer(question, evidence, history):
            pieces.append(piece)
            yield piece
        yield self._finish(question, "".join(pieces), evidence)

    def ask(self, question: str, history: list[dict] | None = None, k: int | None = None,
            filters: Filters | None = None) -> Answer:
        *_, answer = self.stream(question, history, k, filters)
        assert isinstance(answer, Answer)
        return answer

    def _finish(self, question: str, text: str, evidence: list[Evidence]) -> Answer:
        check = check_citations(text, evidence)
        notices = list(self.notices)
        if check.dropped:
            notices.append(f"dropped citation(s) of sources that were not retrieved: {', '.join(check.dropped)}")
        return Answer(question=question, text=check.text, evidence=evidence, citations=check.used,
                      backend=self.llm.name, model=self.llm.model,
                      settings_fingerprint=self.settings.fingerprint(), dropped_citations=check.dropped,
                      notices=notices)

    def close(self) -> None:
        self.index.close()
