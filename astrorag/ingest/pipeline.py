"""Ingest Documents into an index: skip unchanged, chunk, embed, store in checkpointed batches."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..index.embed import Embedder
from ..index.store import Index
from ..index.types import Document
from ..settings import Settings
from ..types import Problem
from .chunking import chunk_document, embedding_text
from .merge import merge_documents


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
    notes: list[str] = field(default_factory=list)

    def __add__(self, other: IngestReport) -> IngestReport:
        """Totals of two reports (a paged source ingests page by page)."""
        return IngestReport(**{f: getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__})

    def summary(self) -> str:
        rate = self.chunks_written / self.seconds if self.seconds else 0.0
        text = (f"{self.seen} records: {self.added} added, {self.updated} updated, {self.unchanged} unchanged"
                f"{f', {self.duplicates_in_input} duplicates in input' if self.duplicates_in_input else ''}; "
                f"{self.chunks_written} chunks written in {self.seconds:.1f} s ({rate:.1f} chunks/s)")
        if self.problems:
            text += f"; {len(self.problems)} record(s) skipped (see above)"
        return text


def _identifiers(doc: Document) -> list[str]:
    return [f"id:{doc.doc_id}"] + [f"{k}:{v.lower()}" for k, v in
                                   (("arxiv", doc.arxiv_id), ("bib", doc.bibcode), ("doi", doc.doi)) if v]


def merge_with_index(index: Index, documents: Sequence[Document], report: IngestReport) -> dict[str, Document]:
    """Fold records of the same paper together (in the input and with the index) into one Document each.

    Stored records that merge into a paper with another id (an ADS record keyed by bibcode meeting its
    arXiv record) are removed, so the paper is stored once under its best id.
    """
    def combine(old: Document, new: Document) -> Document:
        # The same source again is a newer version of the record; another source is merged in.
        return new if old.source == new.source else merge_documents(old, new)

    unique: dict[str, Document] = {}
    keys: dict[str, str] = {}  # arXiv id / bibcode / DOI -> doc_id in ``unique``
    for doc in documents:
        idents = _identifiers(doc)
        twin_id = next((keys[i] for i in idents if i in keys and keys[i] in unique), None)
        if twin_id is not None:
            report.duplicates_in_input += 1
            doc = combine(unique.pop(twin_id), doc)
            idents = _identifiers(doc)
        unique[doc.doc_id] = doc
        keys.update({i: doc.doc_id for i in idents})
    merged: dict[str, Document] = {}
    stale: list[str] = []
    for doc in unique.values():
        related = index.related(doc)
        for old in related:
            doc = combine(old, doc)
        stale.extend(old.doc_id for old in related if old.doc_id != doc.doc_id)
        merged[doc.doc_id] = doc
    if stale:
        index.delete_documents([d for d in dict.fromkeys(stale) if d not in merged])
    return merged


def _embed_on_worker(settings: Settings, texts: list[str]):
    """A dask task: embed texts with the worker's own (cached) copy of the embedder."""
    import numpy as np

    from ..index.embedders import get_embedder, resolve_backend

    if resolve_backend(settings) == "torch":
        import torch

        torch.set_num_threads(1)  # one thread per worker process: the workers are the parallelism
    return np.asarray(get_embedder(settings).encode(texts), dtype=np.float32)


def ingest_documents(index: Index, documents: Sequence[Document], embedder: Embedder, settings: Settings,
                     progress: bool | None = None, client=None) -> IngestReport:
    """Add or update documents; unchanged ones (same content hash) cost only a lookup.

    Work is committed in batches of ``settings.ingest.batch_size`` documents, so a killed ingest
    resumes where it stopped when run again. With a dask ``client``, embedding runs on its workers
    (a few batches in flight) while this process alone writes to the store, in order.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    report = IngestReport(seen=len(documents))
    unique = merge_with_index(index, documents, report)
    known = index.content_hashes()
    todo = [d for d in unique.values() if known.get(d.doc_id) != d.content_hash]
    report.unchanged = len(unique) - len(todo)
    show = settings.progress if progress is None else progress
    bar = tqdm(total=len(todo), unit="doc", desc="ingest", disable=not show or not todo, file=sys.stderr)
    size = settings.ingest.batch_size

    def still_needed(batch):
        # Another process may have written some of these since we looked: skip them (no embedding spent).
        now = index.ledger.content_hashes_of([d.doc_id for d in batch])
        fresh = [d for d in batch if now.get(d.doc_id) != d.content_hash]
        report.unchanged += len(batch) - len(fresh)
        return fresh

    def write(batch, chunks, vectors) -> None:
        # Counted inside the ledger's write transaction: concurrent ingests count each paper once between them.
        added, updated, unchanged = index.write_batch(batch, chunks, vectors)
        report.added += added
        report.updated += updated
        report.unchanged += unchanged
        report.chunks_written += len(chunks)

    def prepare(batch):
        chunks, texts = [], []
        for doc in batch:
            for chunk in chunk_document(doc, settings.ingest.chunk_size, settings.ingest.chunk_overlap):
                chunks.append(chunk)
                texts.append(embedding_text(doc.title, chunk))
        return chunks, texts

    batches = [todo[b:b + size] for b in range(0, len(todo), size)]
    if client is None:
        for batch in batches:
            bar.update(len(batch))
            batch = still_needed(batch)
            if not batch:
                continue
            chunks, texts = prepare(batch)
            t0 = time.perf_counter()
            vectors = embedder.encode(texts)
            report.embed_seconds += time.perf_counter() - t0
            write(batch, chunks, vectors)
    else:
        window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
        pending: list = []
        for batch in batches + [None] * window:
            if batch is not None:
                batch = still_needed(batch)
            if batch:
                chunks, texts = prepare(batch)
                pending.append((batch, chunks, client.submit(_embed_on_worker, settings, texts, pure=False)))
            if len(pending) >= window or (batch is None and pending):
                done_batch, chunks, future = pending.pop(0)
                t0 = time.perf_counter()
                vectors = future.result()
                report.embed_seconds += time.perf_counter() - t0
                write(done_batch, chunks, vectors)
                bar.update(len(done_batch))
    bar.close()
    if todo or index.bm25_is_stale():
        index.rebuild_bm25()
    index.refresh_dense_cache()
    report.seconds = time.perf_counter() - start
    return report
