"""A Chroma embedding function that refuses to embed: astrorag always passes its own vectors.

Chroma falls back to a default embedding function that downloads a model when a collection is
opened without one, which fails offline. Passing this guard prevents the fallback, and if any
code path ever asks Chroma to embed text itself, it fails loudly instead of silently using
another model than the index fingerprint records.
"""

from __future__ import annotations

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from ..errors import AstroRagError


class ChromaEmbeddingGuard(EmbeddingFunction[Documents]):
    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        raise AstroRagError("internal error: Chroma was asked to embed text; astrorag passes vectors itself")

    @staticmethod
    def name() -> str:
        return "astrorag-guard"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> ChromaEmbeddingGuard:
        return ChromaEmbeddingGuard()
