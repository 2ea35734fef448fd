"""What a reproducibility bundle may hold, checked before anything in it is used.

A bundle arrives from someone else (a co-author, a referee, a paper's supplement), so its shape and sizes
are validated with pydantic, and :data:`REPLAYED_SETTINGS` names the only settings a replay takes from it:
the ones that shape the answer. Hosts, URLs, paths and keys always come from the replaying machine.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .settings import MAX_K, MAX_QUESTION_CHARS

#: A bundle of one answer with its evidence is a few hundred kB; past this it is refused unread.
MAX_BUNDLE_BYTES = 16_000_000
MAX_TEXT_CHARS = 1_000_000

#: Settings a replay takes from a bundle: what retrieval and the writer do, never where they run.
REPLAYED_SETTINGS = frozenset({
    "index_name", "k", "retrieval_mode", "candidates", "rrf_k", "graph_rules", "no_evidence_min_cosine",
    "year_min", "year_max", "category", "weight_recency", "weight_citations", "ollama_model", "openai_model",
    "num_ctx", "max_tokens", "prompt_budget", "temperature", "chat_format", "chunk_size", "chunk_overlap"})
# embedding_model is recorded but never taken: a bundle's string would be loaded (a local path) or fetched (a hub
# name) as a model; replay reports when the bundle's differs from this machine's.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def plain_index_name(name: object) -> bool:
    """Whether ``name`` names an index inside the index folder (no path, no ``..``).

    >>> plain_index_name("lrd-2025"), plain_index_name("../../etc"), plain_index_name("/tmp/x")
    (True, False, False)
    """
    return isinstance(name, str) and bool(_PLAIN_NAME.fullmatch(name)) and ".." not in name


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    year_min: int | None = Field(None, ge=1000, le=9999)
    year_max: int | None = Field(None, ge=1000, le=9999)
    category: str | None = Field(None, max_length=40)


class ParamsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int | None = Field(None, ge=1, le=MAX_K, strict=True)
    mode: Literal["dense", "bm25", "fused"] | None = None
    filters: FiltersIn | None = None
    graph_rules: int | None = Field(None, ge=0, le=20, strict=True)
    rewrite: Literal["hyde", "keywords"] | None = None
    rescore: bool = False


class EvidenceIn(_Open):
    key: str = Field(max_length=40)
    kind: Literal["chunk", "rule"]
    text: str = Field("", max_length=MAX_TEXT_CHARS)
    title: str | None = Field(None, max_length=2_000)
    chunk_id: str | None = Field(None, max_length=200)
    rule_id: str | None = Field(None, max_length=200)
    doc_id: str | None = Field(None, max_length=200)


class MessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_TEXT_CHARS)


class ModelIn(_Open):
    backend: str = Field(max_length=40)
    model: str | None = Field(None, max_length=400)
    digest: str | None = Field(None, max_length=200)


class IndexIn(_Open):
    name: str = Field(max_length=200)
    fingerprint: str = Field(max_length=200)
    corpus_hash: str = Field(max_length=200)
    documents: int = Field(ge=0)
    chunks: int = Field(ge=0)


class BundleFile(_Open):
    """The fields a replay reads, with their types and limits (other fields are kept, unread)."""

    bundle_version: int
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=MAX_TEXT_CHARS)
    evidence: list[EvidenceIn] = Field(max_length=500)
    prompt: list[MessageIn] = Field(max_length=200)
    params: ParamsIn | None = None
    settings: dict[str, str | int | float | bool | None] = Field(max_length=200)
    index: IndexIn
    model: ModelIn
