"""Keeping a prompt short without dropping a paper: each passage is cut to its sentences closest to the
question, in their own order, with "…" where text was left out.

Prefill is the cost of a local model on a CPU: Llama-3.1-8B Q4_K_M prefills about 13-25 tokens/s on laptop
CPUs, so a 2,400-token prompt waits one to three minutes for its first word. Leaving passages out would
lose papers (the retrieval that found them is measured at the paper level); shortening each one keeps
every paper in the prompt and drops only the sentences that least resemble the question.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..index.types import Evidence
from ..sentences import split_sentences

ELLIPSIS = "…"


def focus_passage(text: str, allowance: int, relevance: np.ndarray, sentences: list[str],
                  count: Callable[[str], int]) -> str:
    """The passage cut to about ``allowance`` tokens: its most relevant sentences, in their own order.

    The most relevant sentence is always kept, even when it alone is longer than the allowance.

    Examples
    --------
    >>> sents = ["LRDs are compact.", "The weather was fine.", "Their SEDs are V-shaped."]
    >>> focus_passage(" ".join(sents), 9, np.array([0.9, 0.1, 0.8]), sents, lambda t: len(t.split()))
    'LRDs are compact. … Their SEDs are V-shaped.'
    """
    if count(text) <= allowance or len(sentences) < 2:
        return text
    kept: set[int] = set()
    used = 0
    for i in np.argsort(-relevance, kind="stable"):
        cost = count(sentences[i])
        if kept and used + cost > allowance:
            continue
        kept.add(int(i))
        used += cost
    pieces: list[str] = []
    previous = -1
    for i in sorted(kept):
        if i != previous + 1:
            pieces.append(ELLIPSIS)
        pieces.append(sentences[i])
        previous = i
    if previous < len(sentences) - 1:
        pieces.append(ELLIPSIS)
    return " ".join(pieces)


def focus_evidence(question: str, evidence: list[Evidence], allowance: int, encode: Callable[[list[str]], np.ndarray],
                   count: Callable[[str], int]) -> tuple[list[Evidence], float]:
    """Passages (not rules) cut to ``allowance`` tokens each; returns them and the share of text kept.

    ``encode`` embeds texts as unit vectors (the index's embedder), ``count`` estimates tokens.
    """
    passages = [(i, e) for i, e in enumerate(evidence) if e.kind == "chunk"]
    split = {i: split_sentences(e.text) for i, e in passages}
    flat = [s for i, _ in passages for s in split[i]]
    if not flat:
        return evidence, 1.0
    vectors = encode([question, *flat])
    scores = vectors[1:] @ vectors[0]
    out = list(evidence)
    before = after = 0
    offset = 0
    for i, e in passages:
        n = len(split[i])
        text = focus_passage(e.text, allowance, scores[offset:offset + n], split[i], count)
        offset += n
        before += len(e.text)
        after += len(text)
        if text != e.text:
            out[i] = dataclasses.replace(e, text=text)
    return out, (after / before if before else 1.0)
