"""The bundled sample corpus: 687 astro-ph abstracts from 2025 (see astrorag/data/PROVENANCE.txt)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from ..index.embed import Embedder
from ..index.store import Index
from ..settings import Settings
from .pipeline import IngestReport, ingest_documents
from .records import read_files


def sample_corpus_path() -> Path:
    return Path(str(resources.files("astrorag") / "data" / "sample_abstracts.jsonl"))


def build_sample_index(settings: Settings, embedder: Embedder, quiet: bool = False) -> IngestReport:
    """Ingest the sample corpus into the index named in ``settings`` (idempotent)."""
    if not quiet:
        print(f"Building index {settings.index_name!r} in {settings.index_dir} from the bundled sample corpus "
              f"(687 astro-ph abstracts, 2025); this happens once.", file=sys.stderr)
    index = Index.open(settings, create=True)
    try:
        result = read_files([sample_corpus_path()])
        report = ingest_documents(index, result.documents, embedder, settings, progress=not quiet)
    finally:
        index.close()
    from ..index.embedders import prepare_query_embedder

    note = prepare_query_embedder(settings)
    if note and not quiet:
        print(note, file=sys.stderr)
    return report
