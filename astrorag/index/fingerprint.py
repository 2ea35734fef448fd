"""What an index was built with, and the check that the settings reading it agree."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..settings import Settings
from .embed import resolve_model_path

#: Bump when astrorag.ingest.chunking changes what chunks an index holds: old indexes are then refused.
CHUNKER_VERSION = "llama-index-SentenceSplitter/title-prefixed/v1"


def index_fingerprint(settings: Settings) -> dict[str, Any]:
    """What must agree between an index and the settings that read or extend it."""
    from .embedders import resolve_backend

    _, identity = resolve_model_path(settings.embedding.model)
    spec = {"embedding_model": identity, "embedding_backend": resolve_backend(settings),
            "chunk_size": settings.ingest.chunk_size, "chunk_overlap": settings.ingest.chunk_overlap,
            "chunker": CHUNKER_VERSION}
    spec["fingerprint"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return spec


def mismatch_message(settings: Settings, stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    def describe(s: dict[str, Any]) -> str:
        return (f"model {s.get('embedding_model')} ({s.get('embedding_backend', 'torch')}), chunks "
                f"{s.get('chunk_size')}/{s.get('chunk_overlap')}, {s.get('chunker')}")

    return (
        f"index {settings.storage.index_name!r} at {settings.index_path} was built with {describe(stored)} "
        f"[fingerprint {stored.get('fingerprint')}], but the current settings give {describe(wanted)} "
        f"[fingerprint {wanted['fingerprint']}]. Mixing them would corrupt retrieval. Either go back to the "
        f"index's settings (e.g. ASTRORAG_EMBEDDING_MODEL={stored.get('embedding_model')} "
        f"ASTRORAG_CHUNK_SIZE={stored.get('chunk_size')} ASTRORAG_CHUNK_OVERLAP={stored.get('chunk_overlap')}), "
        f"use another index with --index NAME, or re-embed this one from its stored records with "
        f"`astrorag index rebuild --index {settings.storage.index_name}`."
    )


def category_keys(categories) -> list[str]:
    """Metadata keys for category filters: each category and its archive (``astro-ph``)."""
    keys = set()
    for cat in categories:
        keys.add(f"cat:{cat}")
        keys.add(f"arch:{cat.split('.')[0]}")
    return sorted(keys)


def category_key(category: str) -> str:
    return f"cat:{category}" if "." in category else f"arch:{category}"
