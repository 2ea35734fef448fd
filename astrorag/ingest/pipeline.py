"""Ingest Documents into an index: skip unchanged, chunk, embed, store in checkpointed batches."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..index.embed import Embedder
from ..index.store import Index
from ..settings import Settings
from ..types import Document
from .chunking import chunk_document, embedding_text
from .records import Problem


@dataclass
class IngestReport:
    """What an ingest did, for the CLI summary and the benchmark."""

    seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_in_input: int = 0
    chunks_written: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.chunks_written / self.seconds if self.seconds else 0.0
        text = (f"{self.seen} records: {self.added} added, {self.updated} updated, {self.unchanged} unchanged"
                f"{f', {self.duplicates_in_input} duplicates in input' if self.duplicates_in_input else ''}; "
                f"{self.chunks_written} chunks written in {self.seconds:.1f} s ({rate:.1f} chunks/s)")
        if self.problems:
            text += f"; {len(self.problems)} record(s) skipped (see above)"
        return text


def ingest_documents(index: Index, documents: Sequence[Document], embedder: Embedder, settings: Settings,
                     progress: bool | None = None) -> IngestReport:
    """Add or update documents; unchanged ones (same content hash) cost only a lookup.

    Work is committed in batches of ``settings.ingest_batch_size`` documents, so a killed ingest
    resumes where it stopped when run again.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    report = IngestReport(seen=len(documents))
    unique: dict[str, Document] = {}
    for doc in documents:
        if doc.doc_id in unique:
            report.duplicates_in_input += 1
        unique[doc.doc_id] = doc  # the last record of a paper wins, as a later export would
    known = index.content_hashes()
    todo = [d for d in unique.values() if known.get(d.doc_id) != d.content_hash]
    report.unchanged = len(unique) - len(todo)
    report.updated = sum(1 for d in todo if d.doc_id in known)
    report.added = len(todo) - report.updated
    show = settings.progress if progress is None else progress
    bar = tqdm(total=len(todo), unit="doc", desc="ingest", disable=not show or not todo, file=sys.stderr)
    size = settings.ingest_batch_size
    for begin in range(0, len(todo), size):
        batch = todo[begin:begin + size]
        chunks, texts = [], []
        for doc in batch:
            for chunk in chunk_document(doc, settings.chunk_size, settings.chunk_overlap):
                chunks.append(chunk)
                texts.append(embedding_text(doc.title, chunk))
        t0 = time.perf_counter()
        vectors = embedder.encode(texts)
        report.embed_seconds += time.perf_counter() - t0
        index.write_batch(batch, chunks, vectors)
        report.chunks_written += len(chunks)
        bar.update(len(batch))
    bar.close()
    if todo or index.bm25_is_stale():
        index.rebuild_bm25()
    report.seconds = time.perf_counter() - start
    return report
