"""Re-chunk and re-embed an index from its own stored records with the current settings."""

from __future__ import annotations

import json
import shutil
import sqlite3

from ..errors import IndexDamagedError, IndexNotFoundError
from ..index.embedders import get_embedder
from ..index.ledger import Ledger, ledger_damage
from ..index.store import Index
from ..index.types import Document
from ..index.vectors import VectorStore
from ..settings import Settings
from .pipeline import IngestReport, ingest_documents


def rebuild_index(settings: Settings) -> IngestReport:
    """Build a fresh index beside the old one from its ledger, then swap it in.

    The old index stays untouched until the new one is complete, so an interrupted rebuild
    loses nothing.
    """
    ledger = settings.index_path / "ledger.sqlite"
    if not ledger.is_file():
        raise IndexNotFoundError(f"no index {settings.storage.index_name!r} in {settings.storage.index_dir} to rebuild")
    # Rebuilding re-embeds from the ledger and replaces everything else: refuse when the ledger holds less
    # than the vectors do, since what only the vectors hold would be lost (Index.open names a damaged ledger).
    # (Opened part by part: the index was built with other settings, which is why it is being rebuilt.)
    damage = ledger_damage(ledger)
    if damage:
        raise IndexDamagedError(f"index {settings.storage.index_name!r}: its ledger is damaged ({damage}); a "
                                f"rebuild would lose what only the vectors hold. Run `astrorag index repair --index "
                                f"{settings.storage.index_name}` first")
    current = Ledger(ledger)
    try:
        chunks = current.count_chunks()
    finally:
        current.close()
    vectors = VectorStore(settings.index_path, settings.storage.chroma_url).count()
    if vectors > chunks:
        raise IndexDamagedError(
            f"index {settings.storage.index_name!r}: the ledger records {chunks} chunks but the vector store holds "
            f"{vectors}; a rebuild from the ledger would lose the rest. Run `astrorag index repair --index "
            f"{settings.storage.index_name}` first (it recovers them), then rebuild")
    with sqlite3.connect(ledger) as db:
        docs = [Document.from_dict(json.loads(r[0])) for r in db.execute("SELECT record FROM documents")]
    staging = settings.replace(index_name=f"{settings.storage.index_name}.rebuild")
    Index.drop(staging)
    index = Index.open(staging, create=True)
    try:
        report = ingest_documents(index, docs, get_embedder(settings), settings)
    finally:
        index.close()
    old = settings.storage.index_dir / f"{settings.storage.index_name}.old"
    shutil.rmtree(old, ignore_errors=True)
    settings.index_path.replace(old)
    staging.index_path.replace(settings.index_path)
    shutil.rmtree(old, ignore_errors=True)
    return report
