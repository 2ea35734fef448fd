"""Repair a damaged index without losing what can be kept: the manifest, the ledger, vectors, keywords.

Nothing is deleted: a damaged ledger is moved aside (``ledger.sqlite.damaged-<time>``) before a new one is
written. The ledger is rebuilt from what the vector store keeps of each chunk (its text, paper id, position,
year and categories); the papers' titles and authors come back on the next ingest of the same sources, which
sees the recovered records as changed. Chunks the vector store lacks are re-embedded from the ledger.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..errors import IndexNotFoundError
from ..index.embedders import get_embedder
from ..index.fingerprint import index_fingerprint
from ..index.ledger import Ledger, ledger_damage
from ..index.store import Index
from ..index.types import Chunk, Document
from ..index.vectors import VectorStore
from ..settings import Settings
from ..types import normalize_arxiv_id
from .chunking import embedding_text

RECOVERED_SECTION = "recovered"


@dataclass
class RepairReport:
    actions: list[str] = field(default_factory=list)
    recovered_documents: int = 0
    recovered_chunks: int = 0
    reembedded_chunks: int = 0

    def summary(self) -> str:
        return "; ".join(self.actions) if self.actions else "nothing to repair"


def _recovered_document(doc_id: str, chunks: list[tuple[int, str, dict]]) -> Document:
    meta = chunks[0][2]
    categories = tuple(sorted(k[4:] for k in meta if k.startswith("cat:")))
    arxiv = normalize_arxiv_id(doc_id)
    bibcode = doc_id if not arxiv and len(doc_id) == 19 and doc_id[:4].isdigit() else None
    body = "\n".join(text for _, text, _ in sorted(chunks, key=lambda c: c[0]))
    return Document(doc_id=doc_id, title=f"(recovered from the vector store) {doc_id}", body=body,
                    year=meta.get("year"), arxiv_id=arxiv, bibcode=bibcode, categories=categories,
                    source="recovered", url=f"https://arxiv.org/abs/{arxiv}" if arxiv else None)


def _recover_ledger(settings: Settings, ledger: Ledger, only_missing: bool, report: RepairReport) -> None:
    known = set(ledger.content_hashes()) if only_missing else set()
    by_doc: dict[str, list[tuple[int, str, dict]]] = {}
    ids: dict[str, list[str]] = {}
    for cid, text, meta in VectorStore(settings.index_path, settings.storage.chroma_url).stored():
        doc_id = (meta or {}).get("doc_id")
        if not doc_id or doc_id in known:
            continue
        by_doc.setdefault(doc_id, []).append((int(meta.get("position", 0)), text or "", meta))
        ids.setdefault(doc_id, []).append(cid)
    for doc_id, chunks in sorted(by_doc.items()):
        doc = _recovered_document(doc_id, chunks)
        order = sorted(range(len(chunks)), key=lambda k: chunks[k][0])
        records = [Chunk(ids[doc_id][k], doc_id, chunks[k][0], chunks[k][1], RECOVERED_SECTION) for k in order]
        ledger.record_batch([doc], records, [])
        report.recovered_documents += 1
        report.recovered_chunks += len(records)


def repair_index(settings: Settings) -> RepairReport:
    """Check each part of the index and repair what is damaged, most fundamental first."""
    path = settings.index_path
    if not path.is_dir():
        raise IndexNotFoundError(f"no index {settings.storage.index_name!r} in {settings.storage.index_dir} to repair")
    report = RepairReport()
    manifest = path / "manifest.json"
    try:
        json.loads(manifest.read_text())["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        spec = dict(index_fingerprint(settings), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    repaired=True)
        manifest.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
        report.actions.append(f"rewrote the manifest from the current settings ({spec['embedding_model']}, "
                              f"chunks {spec['chunk_size']}/{spec['chunk_overlap']})")
    ledger_path = path / "ledger.sqlite"
    damage = ledger_damage(ledger_path)
    if damage:
        aside = ledger_path.with_name(f"ledger.sqlite.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        ledger_path.replace(aside)
        report.actions.append(f"moved the damaged ledger ({damage}) to {aside.name}")
    ledger = Ledger(ledger_path)
    try:
        if damage or VectorStore(path, settings.storage.chroma_url).count() > ledger.count_chunks():
            _recover_ledger(settings, ledger, only_missing=not damage, report=report)
            report.actions.append(f"recovered {report.recovered_documents} papers ({report.recovered_chunks} "
                                  f"chunks) into the ledger from the vector store")
            ledger.set_meta("bm25_stale", "1")
    finally:
        ledger.close()
    index = Index.open(settings)
    try:
        missing = sorted(set(index.chunk_ids()) - index.vectors.ids())
        if missing:
            chunks = index.chunks(missing)
            docs = index.documents({c.doc_id for c in chunks.values()})
            ordered = [chunks[c] for c in missing]
            vectors = get_embedder(settings).encode([embedding_text(docs[c.doc_id].title, c) for c in ordered])
            index.vectors.upsert(ordered, docs, vectors)
            report.reembedded_chunks = len(ordered)
            report.actions.append(f"re-embedded {len(ordered)} chunks the vector store had lost")
        if report.actions or index.bm25_is_stale() or index.check(full=False):
            index.rebuild_bm25()
            report.actions.append("rebuilt the keyword index")
        if missing or report.recovered_chunks:
            index.ledger.set_meta("dense_stale", "1")
        index.refresh_dense_cache()
        remaining = index.check(full=True)
    finally:
        index.close()
    if remaining:
        report.actions.append("still wrong: " + "; ".join(remaining))
    return report
