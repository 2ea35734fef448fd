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
#: Words of a question that say what kind of answer is wanted, not what it is about.
_ASKING = {"what", "which", "when", "where", "does", "with", "that", "this", "from", "have", "there", "their",
           "about", "would", "could", "should", "into", "explain", "describe", "role", "many", "much", "they",
           "them", "these", "those", "more", "most", "than", "then", "some", "such", "were", "been", "being",
           "able", "also", "each", "very", "over", "under", "between", "within", "without", "against", "known"}
#: How much the question's specific words weigh beside the embedding similarity (cosines of 0.3-0.7).
FOCUS_WEIGHT = 0.15
#: A sentence holding at least this share of the question's specific words (by weight) is about its subject;
#: when two or more are, but at most half of the candidates, the others are left out.
FOCUS_MAJOR = 0.5


def _stem(word: str) -> str:
    """A crude stem for matching: the first six letters (glitch/glitches, cause/causes/caused)."""
    return word[:6] if len(word) > 6 else word.rstrip("s")


def focus_scores(question: str, sentences: list[str], with_widest: bool = False):
    """Per sentence, the share of the question's specific words it contains, each weighted by how rare it
    is among the candidate sentences (inverse sentence frequency): "What causes pulsar glitches?" over
    passages about pulsar timing favours the sentences that say "glitch", which every passage's "pulsar"
    cannot do. With ``with_widest``, also how many sentences hold the question's most widespread word.

    >>> focus_scores("What causes pulsar glitches?", ["Pulsar timing arrays.", "Two glitches were seen in the pulsar."]).round(2).tolist()
    [0.0, 1.0]
    """
    words = {_stem(w) for w in _WORD.findall(question.lower()) if len(w) >= 4 and w not in _ASKING}
    stems = [{_stem(w) for w in _WORD.findall(s.lower())} for s in sentences]
    n = len(sentences)
    # a word no sentence has cannot tell them apart
    counts = {w: k for w in words if (k := sum(w in s for s in stems))}
    weights = {w: np.log((1 + n) / (1 + k)) for w, k in counts.items()}
    total = sum(weights.values())
    scores = (np.array([sum(weight for w, weight in weights.items() if w in s) / total for s in stems])
              if total > 0 else np.zeros(n))
    return (scores, max(counts.values(), default=0)) if with_widest else scores


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
        focus, widest = focus_scores(question, [s for _, s in candidates], with_widest=True)
        scores = scores + FOCUS_WEIGHT * focus
        about = int((focus >= FOCUS_MAJOR).sum())
        if 2 <= about < widest:
            # a few sentences say what the question is specifically about while more share only its common
            # word (on "pulsar glitches": glitch against pulsar): leave the latter out
            scores = np.where(focus >= FOCUS_MAJOR, scores, -np.inf)
        # A small prior for the retriever's own ranking breaks ties between near-equal sentences.
        rank_prior = np.array([0.02 / (1 + evidence.index(ev)) for ev, _ in candidates])
        order = np.argsort(-(scores + rank_prior), kind="stable")
        picked: list[tuple[Evidence, str]] = []
        per: dict[str, int] = {}
        for i in order:
            if not np.isfinite(scores[i]):
                break
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
