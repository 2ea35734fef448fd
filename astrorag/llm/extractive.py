"""Extractive backend: no language model; the answer is the most relevant retrieved sentences."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from ..index.embed import Embedder
from ..index.types import Evidence
from ..sentences import split_sentences

HEADER = ("Extractive answer (no language model was used): the retrieved sentences most relevant to "
          "the question, with their sources.")
_WORD = re.compile(r"[a-z0-9]+")


class ExtractiveAnswerer:
    """Answers without a language model: picks sentences by embedding similarity to the question
    (lexical overlap without an embedder). It writes answers only; it is not a chat backend.

    Examples
    --------
    >>> ev = [Evidence(key="1", kind="chunk", text="LRDs are compact. Their V-shaped SEDs suggest AGN.")]
    >>> text = "".join(ExtractiveAnswerer(max_sentences=1).answer("Why are LRD SEDs V-shaped?", ev))
    >>> text.splitlines()[-1]
    '- Their V-shaped SEDs suggest AGN. [1]'
    """

    name = "extractive"
    model = "extractive"

    def __init__(self, embedder: Embedder | None = None, max_sentences: int = 4, per_source: int = 2):
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.per_source = per_source

    def answer(self, question: str, evidence: list[Evidence], history: list[dict] | None = None) -> Iterator[str]:
        if not evidence:
            yield "Extractive answer (no language model was used): nothing relevant was retrieved for this question."
            return
        rules = [ev for ev in evidence if ev.kind == "rule"]
        evidence = [ev for ev in evidence if ev.kind != "rule"]
        yield HEADER + "\n"
        if rules:
            # Curated rules are already the distilled answer to a fitting question: state them first.
            yield "\nFitting rules that apply:"
            for ev in rules:
                # The rule's papers are listed with it under Sources; bare ids in the text would be dropped
                # by the citation check when those papers are not in the index.
                yield f"\n- {ev.title.rstrip('.')}. [{ev.key}]"
            if evidence:
                yield "\n\nFrom the retrieved papers:"
        candidates = [(ev, s) for ev in evidence for s in split_sentences(ev.text) if len(s) > 20]
        scores = self._scores(question, [s for _, s in candidates])
        # A small prior for the retriever's own ranking breaks ties between near-equal sentences.
        rank_prior = np.array([0.02 / (1 + evidence.index(ev)) for ev, _ in candidates])
        order = np.argsort(-(scores + rank_prior), kind="stable")
        picked: list[tuple[Evidence, str]] = []
        per: dict[str, int] = {}
        for i in order:
            ev, sentence = candidates[i]
            paper = ev.doc_id or ev.key  # two passages of one paper share its allowance
            if per.get(paper, 0) >= self.per_source:
                continue
            per[paper] = per.get(paper, 0) + 1
            picked.append((ev, sentence))
            if len(picked) == self.max_sentences:
                break
        for ev, sentence in picked:
            yield f"\n- {sentence} [{ev.key}]"

    def _scores(self, question: str, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros(0)
        if self.embedder is not None:
            vectors = self.embedder.encode([question, *sentences])
            return vectors[1:] @ vectors[0]
        q = set(_WORD.findall(question.lower()))
        return np.array([len(q & set(_WORD.findall(s.lower()))) / (1 + len(q)) for s in sentences])
