"""Answering questions: retrieve evidence, let a writer (a language model or the extractive answerer)
write, keep only honest citations."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np

from .errors import ContextOverflowError, InputError
from .graph.retrieve import graph_search, rule_text, rule_to_evidence
from .graph.rulebook import RuleBook
from .index.embed import Embedder
from .index.embedders import get_query_embedder
from .index.retrieve import Retriever
from .index.store import Index
from .index.types import Answer, Evidence, QueryParams, number_evidence
from .ingest.sample import ensure_sample_index
from .llm import LLMBackend, get_backend
from .llm.degenerate import ReplyGuard
from .llm.extractive import ExtractiveAnswerer
from .llm.prompt import build_messages, check_citations, quote_evidence
from .settings import MAX_K, MAX_QUESTION_CHARS, Settings

#: Streamed text is shown a line at a time, once the line is checked; a line longer than this is shown
#: before it ends.
HOLD_CHARS = 600
#: The most of the prompt budget that rules may take when the prompt must be shortened.
RULE_SHARE = 0.4


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
    #: how the prompt was fitted to the model: context size and source, counting method, reply room
    fit: dict = field(default_factory=dict)


class AnswerStream:
    """One answer being written: iterating yields the checked text; then :attr:`answer` holds the Answer.

    :attr:`prepared` is the prompt the writer read, set before the first piece.

    Examples
    --------
    >>> response = Assistant(Settings(), backend="extractive").stream("What powers little red dots?")  # doctest: +SKIP
    >>> text = "".join(response)  # doctest: +SKIP
    >>> response.answer.text == text  # doctest: +SKIP
    True
    """

    def __init__(self) -> None:
        self.answer: Answer | None = None
        self.prepared: Prepared | None = None
        self._pieces: Generator[str, None, Answer] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._pieces is None:
            return
        pieces, self._pieces = self._pieces, None  # one pass: the model is asked once
        self.answer = yield from pieces

    def finish(self) -> Answer:
        """Read what is left of the text and return the :class:`Answer`."""
        for _ in self:
            pass
        assert self.answer is not None, "the stream was closed before the answer was finished"
        return self.answer


class Assistant:
    """The question-answering entry point used by the CLI, the app and the evaluation harness.

    The default index is built from the bundled sample corpus the first time it is needed. Per-call
    options (k, retrieval mode, filters) travel in :class:`~astrorag.index.types.QueryParams`, so one
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
        waited = ensure_sample_index(settings, embedder) if settings.storage.index_name == "default" else ""
        # Questions are embedded without torch when the index's model has a cached fp32 export.
        self.embedder = embedder or get_query_embedder(settings)
        self.index = Index.open(settings)
        self.retriever = Retriever(self.index, self.embedder, settings)
        self.graph: RuleBook = RuleBook.load(settings.index_path)  # the rules only: no networkx on the ask path
        self.notices: list[str] = [waited] if waited else []
        # e.g. a deleted chroma/ folder: say so instead of answering from keywords alone
        if notice := self.index.missing_vectors_notice():
            self.notices.append(f"notice: {notice}")
        self._owns_llm = llm is None  # a model handed in belongs to the caller, who closes it
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

        With a language model, passages that would not fit the model's context (less room for the reply)
        are dropped from the end, lowest-ranked first, and a notice says so.

        Raises
        ------
        InputError
            For an empty or overlong question, or a k outside 1..MAX_K.
        """
        if not question or not question.strip():
            raise InputError("the question is empty; ask something, e.g. astrorag ask \"What powers little red dots?\"")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(f"the question has {len(question):,} characters; astrorag takes up to "
                             f"{MAX_QUESTION_CHARS:,} (a question, not a paper: add papers with `astrorag ingest`)")
        k = (params.k if params else None) or self.settings.retrieval.k
        if not (isinstance(k, int) and 1 <= k <= MAX_K):
            raise InputError(f"k={k!r} must be a whole number from 1 to {MAX_K}")
        evidence = self.retrieve(question, params)
        closest = self.closest_passage(question, evidence)
        if closest is not None and closest < self.settings.retrieval.no_evidence_min_cosine \
                and not any(e.kind == "rule" for e in evidence):
            return Prepared(question, [], [], notices=[], no_evidence=True, closest=closest)
        messages = build_messages(question, evidence, history)
        notices = []
        if self.index.keyword.notice:
            notices.append(f"notice: {self.index.keyword.notice}")
            self.index.keyword.notice = ""
        if self.llm is None:
            return Prepared(question, evidence, messages, notices=notices)
        evidence = self._shorten(question, evidence, history, notices)
        return self._fit_to_context(question, evidence, history, notices)

    def _shorten(self, question: str, evidence: list[Evidence], history: list[dict] | None,
                 notices: list[str]) -> list[Evidence]:
        """Keep the prompt within ``prompt_budget`` tokens without leaving a paper out: rules in brief
        (the first sentence of their rationale), then each passage cut to its sentences closest to the
        question (see :mod:`astrorag.llm.focus`)."""
        assert self.llm is not None
        budget = self.settings.llm.prompt_budget
        count = self.llm.count_tokens(build_messages(question, evidence, history))
        if not budget or count.with_margin <= budget:
            return evidence
        evidence = [dataclasses.replace(e, text=rule_text(self.graph.get(e.rule_id), brief=True))
                    if e.kind == "rule" and e.rule_id in self.graph else e for e in evidence]
        # Rules take at most RULE_SHARE of the budget (the best-matched one always stays): passages, the
        # papers' own words, keep the larger part.
        rules_out: list[str] = []
        while sum(1 for e in evidence if e.kind == "rule") > 1 and self._rule_tokens(evidence) > RULE_SHARE * budget:
            last = max(i for i, e in enumerate(evidence) if e.kind == "rule")
            rules_out.append(evidence[last].rule_id or "")
            evidence = evidence[:last] + evidence[last + 1:]
        count = self.llm.count_tokens(build_messages(question, evidence, history))
        passages = [e for e in evidence if e.kind == "chunk"]
        kept = 1.0
        if count.with_margin > budget and passages:
            from llama_index.core.utils import get_tokenizer

            from .llm.focus import focus_evidence

            encode_tokens = get_tokenizer()

            def estimate(text: str) -> int:
                return len(encode_tokens(text))

            vectors: dict[str, np.ndarray] = {}

            def embed(texts: list[str]) -> np.ndarray:  # each sentence once, however often the allowance shrinks
                missing = [t for t in dict.fromkeys(texts) if t not in vectors]
                if missing:
                    vectors.update(zip(missing, self.embedder.encode(missing)))
                return np.stack([vectors[t] for t in texts])

            fixed = count.tokens - sum(estimate(e.text) for e in passages)
            allowance = max(30, (budget - fixed) // len(passages))
            full = evidence
            for _ in range(8):
                evidence, kept = focus_evidence(question, full, allowance, embed, estimate)
                count = self.llm.count_tokens(build_messages(question, evidence, history))
                if count.with_margin <= budget or allowance <= 30:
                    break
                allowance = max(30, int(allowance * 0.85))
        left = f", rule(s) {', '.join(rules_out)} left out" if rules_out else ""
        notices.append(f"notice: the prompt was kept near {budget} tokens (prompt_budget; 0 lifts it): rules in "
                       f"brief{left}, passages cut to their sentences closest to the question ({kept:.0%} of their "
                       f"text kept), {count.tokens} tokens ({count.method})")
        return evidence

    def _rule_tokens(self, evidence: list[Evidence]) -> int:
        rules = [e for e in evidence if e.kind == "rule"]
        assert self.llm is not None
        return self.llm.count_tokens([{"role": "user", "content": quote_evidence(rules)}]).tokens

    def _fit_to_context(self, question: str, evidence: list[Evidence], history: list[dict] | None,
                        notices: list[str]) -> Prepared:
        """Leave out the lowest-ranked passages (then rules) until the prompt and a reply fit the context.

        The context is what the backend knows of the model's (the server's report, or ``num_ctx`` where it
        is ours to set); the reply keeps ``max_tokens`` free, or a quarter of a small context.
        """
        assert self.llm is not None
        context = self.llm.context_size()
        reserve = min(self.llm.max_tokens, context.tokens // 4)
        budget = context.tokens - reserve
        messages = build_messages(question, evidence, history)
        count = self.llm.count_tokens(messages)
        left_out = 0
        for kind in ("chunk", "rule"):
            while count.with_margin > budget and any(e.kind == kind for e in evidence):
                last = max(i for i, e in enumerate(evidence) if e.kind == kind)
                evidence = evidence[:last] + evidence[last + 1:]
                left_out += 1
                messages = build_messages(question, evidence, history)
                count = self.llm.count_tokens(messages)
        if count.with_margin > budget:
            raise ContextOverflowError(
                f"the model's context of {context.tokens} tokens ({context.source}) cannot hold the question and "
                f"the instructions ({count.tokens} tokens, {count.method}) with room for a reply: raise --num-ctx "
                f"(for a server, start it with a larger context) or shorten the question", context.tokens)
        reply = min(self.llm.max_tokens, context.tokens - count.with_margin)
        fit = {"n_ctx": context.tokens, "n_ctx_source": context.source, "prompt_tokens": count.tokens,
               "counted_by": count.method, "exact_count": count.exact, "reply_tokens": reply,
               "passages_left_out": left_out}
        if left_out:
            notices.append(f"notice: the prompt was fitted to the model's context of {context.tokens} tokens "
                           f"({context.source}): {left_out} lowest-ranked passage(s) left out, {count.tokens} "
                           f"prompt tokens ({count.method}), up to {reply} for the reply. For more evidence raise "
                           f"--num-ctx (a server's own context: its --n_ctx) or lower --k")
        return Prepared(question, evidence, messages, count.tokens, notices, fit=fit)

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
               history: list[dict] | None = None) -> AnswerStream:
        """The answer as it is written: iterate for the checked text, then read ``.answer``.

        The stream also holds ``.prepared``, the prompt the writer read (what a reproducibility bundle
        records).
        """
        response = AnswerStream()
        response._pieces = self._stream(question, params, history, response)
        return response

    def _stream(self, question: str, params: QueryParams | None, history: list[dict] | None,
                response: AnswerStream) -> Generator[str, None, Answer]:
        prepared = response.prepared = self.prepare(question, params, history)
        if prepared.no_evidence:
            text = no_evidence_text(question, prepared.closest, self.settings.retrieval.no_evidence_min_cosine)
            yield text
            return Answer(question=question, text=text, evidence=[], citations=[], backend=self.writer.name,
                          model=self.writer.model, settings_fingerprint=self.settings.fingerprint(),
                          notices=list(self.notices), no_evidence=True)
        if self.llm is None:
            pieces = list(self.writer.answer(question, prepared.evidence, history))
            yield from pieces
            return self._finish(prepared, "".join(pieces))
        try:
            reply, reason = yield from self._write(prepared, history)
        except ContextOverflowError as exc:
            if exc.n_ctx is None or not self.llm.context_size().tokens < (prepared.fit.get("n_ctx") or 0):
                raise
            # The server said its real context only now (llama-cpp-python's reports it on overflow): fit the
            # prompt to it and ask once more.
            prepared = response.prepared = self.prepare(question, params, history)
            reply, reason = yield from self._write(prepared, history)
        return self._finish(prepared, reply, reason)

    def _write(self, prepared: Prepared, history: list[dict] | None):
        """Stream the model's reply a checked line at a time; stop it as soon as it turns degenerate.

        Returns (as the generator's value) the whole reply and the reason it cannot be shown, or None.
        """
        assert self.llm is not None
        self.llm.limit_reply(prepared.fit.get("reply_tokens"))
        guard = ReplyGuard(prepared.messages, self.llm.reply_tokens())
        self.llm.last_usage = type(self.llm.last_usage)()
        reply: list[str] = []
        held = ""
        stream = self.llm.answer(prepared.question, prepared.evidence, history)
        try:
            for piece in stream:
                reply.append(piece)
                if guard.feed(piece):
                    break  # closing the stream stops the model: no tokens are spent on an echo
                held += piece
                cut = held.rfind("\n") + 1 or (len(held) if len(held) > HOLD_CHARS else 0)
                if cut:
                    yield held[:cut]
                    held = held[cut:]
        finally:
            stream.close()
            self.llm.limit_reply(None)
        reason = guard.finish(finish_reason=self.llm.last_usage.finish_reason)
        if not reason and held:
            yield held
        return "".join(reply), reason

    def ask(self, question: str, params: QueryParams | None = None, history: list[dict] | None = None) -> Answer:
        """The checked :class:`Answer`, without streaming."""
        return self.stream(question, params, history).finish()

    def _finish(self, prepared: Prepared, text: str, degenerate: str | None = None) -> Answer:
        # What the backend learned while answering (e.g. the model a server really serves) is said too.
        learned = [n for n in getattr(self.llm, "notices", []) or [] if n not in self.notices]
        notices = [*self.notices, *learned, *prepared.notices]
        rejected = ""
        if degenerate:
            rejected = text
            text = "".join(ExtractiveAnswerer(self.embedder).answer(prepared.question, prepared.evidence))
            notices.append(f"notice: the model's reply was set aside because {degenerate}; the extractive answer "
                           f"is shown instead (the reply is kept as rejected_reply in --json). A chat-tuned model "
                           f"such as AstroSage-8B answers this prompt; a base model echoes it")
        check = check_citations(text, prepared.evidence)
        if check.dropped:
            notices.append(f"dropped citation(s) of sources that were not retrieved: {', '.join(check.dropped)}")
        if check.rewritten:
            notices.append(f"rewrote identifiers of retrieved papers to their keys: {', '.join(check.rewritten)}")
        tokens: dict = {}
        if self.llm is not None:
            usage = self.llm.last_usage
            tokens = {**prepared.fit, "prompt_tokens": usage.prompt_tokens or prepared.prompt_tokens,
                      "completion_tokens": usage.output_tokens, "finish_reason": usage.finish_reason,
                      "seconds": None if usage.seconds is None else round(usage.seconds, 3),
                      "first_token_s": None if usage.first_token_s is None else round(usage.first_token_s, 3)}
            if usage.prompt_tokens is not None:
                tokens["counted_by"] = f"the server ({self.llm.name})" if not prepared.fit.get("exact_count") \
                    else prepared.fit.get("counted_by")
        return Answer(question=prepared.question, text=check.text, evidence=prepared.evidence,
                      citations=check.used, backend=self.writer.name, model=self.writer.model,
                      settings_fingerprint=self.settings.fingerprint(), dropped_citations=check.dropped,
                      notices=notices, degenerate=bool(degenerate), degenerate_reason=degenerate or "",
                      rejected_reply=rejected[:4000], tokens=tokens)

    def cited_documents(self, answer: Answer) -> list:
        """The indexed papers an answer cites, in citation order (for BibTeX)."""
        ids = list(dict.fromkeys(e.doc_id for e in answer.citations if e.kind == "chunk" and e.doc_id))
        docs = self.index.documents(ids)
        return [docs[i] for i in ids if i in docs]

    def close(self) -> None:
        self.index.close()
        if self.llm is not None and self._owns_llm:
            self.llm.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
