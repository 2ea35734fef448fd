"""``astrorag bench``: ingest and retrieval speed and quality on the bundled sample corpus.

Numbers, not assertions: run it on the machine you care about and read the table.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .index.embed import get_embedder
from .index.retrieve import Retriever
from .index.store import Index
from .ingest.chunking import chunk_document, embedding_text
from .ingest.pipeline import ingest_documents
from .ingest.records import read_files
from .ingest.sample import sample_corpus_path
from .settings import Settings


def _percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def title_query_scores(retriever: Retriever, docs: list, k: int = 5) -> dict[str, dict[str, float]]:
    """Recall@k and MRR@k when each paper's title is the query and the paper itself is the target."""
    out: dict[str, dict[str, float]] = {}
    for mode in ("dense", "bm25", "fused"):
        hits, rr = 0, 0.0
        for doc in docs:
            ids = [e.doc_id for e in retriever.search(doc.title, k=k, mode=mode)]
            if doc.doc_id in ids:
                hits += 1
                rr += 1.0 / (ids.index(doc.doc_id) + 1)
        out[mode] = {f"recall@{k}": hits / len(docs), f"mrr@{k}": rr / len(docs)}
    return out


def run_bench(settings: Settings, limit: int | None = None, log: Callable[[str], Any] | None = print) -> dict:
    """Measure raw encoding vs the ingest pipeline, re-ingest, retrieval latency and title-query recall."""
    say = log or (lambda _msg: None)
    docs = read_files([sample_corpus_path()]).documents[:limit]
    embedder = get_embedder(settings)
    texts = [embedding_text(d.title, c) for d in docs
             for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap)]
    embedder.encode(texts[:32])  # warm-up: first call pays for lazy initialisation
    t0 = time.perf_counter()
    embedder.encode(texts)
    raw_s = time.perf_counter() - t0
    results: dict[str, Any] = {"documents": len(docs), "chunks": len(texts),
                               "embedding_model": embedder.identity, "device": getattr(embedder, "device", "cpu"),
                               "raw_encode_chunks_per_s": len(texts) / raw_s}
    say(f"sample corpus: {len(docs)} abstracts, {len(texts)} chunks; model {embedder.identity} "
        f"on {results['device']}")
    with tempfile.TemporaryDirectory(prefix="astrorag-bench-") as tmp:
        bench = settings.replace(index_dir=Path(tmp), index_name="bench", progress=False)
        index = Index.open(bench, create=True)
        first = ingest_documents(index, docs, embedder, bench, progress=False)
        # A re-ingest as a user runs it: read and parse the file again, find nothing changed.
        t0 = time.perf_counter()
        again = read_files([sample_corpus_path()]).documents[:limit]
        second = ingest_documents(index, again, embedder, bench, progress=False)
        reingest_s = time.perf_counter() - t0
        assert second.chunks_written == 0, "a no-change re-ingest wrote chunks"
        results.update({
            "ingest_seconds": first.seconds,
            "ingest_chunks_per_s": first.chunks_written / first.seconds,
            "ingest_docs_per_s": len(docs) / first.seconds,
            "reingest_seconds": reingest_s,
            "reingest_speedup": first.seconds / reingest_s,
        })
        results["pipeline_over_raw"] = results["ingest_chunks_per_s"] / results["raw_encode_chunks_per_s"]
        retriever = Retriever(index, embedder, bench)
        queries = [d.title for d in docs[:200]]
        retriever.search(queries[0])  # warm-up (loads BM25, opens Chroma)
        for mode in ("dense", "bm25", "fused"):
            samples = []
            for q in queries:
                t = time.perf_counter()
                retriever.search(q, k=bench.k, mode=mode)
                samples.append(time.perf_counter() - t)
            p50, p95 = _percentiles(samples)
            results[f"retrieval_{mode}_p50_ms"], results[f"retrieval_{mode}_p95_ms"] = p50, p95
        quality = title_query_scores(retriever, docs, k=5)
        for mode, scores in quality.items():
            for name, value in scores.items():
                results[f"title_{name}_{mode}"] = value
        index.close()
    _table(results, say)
    return results


def _table(r: dict[str, Any], say: Callable[[str], Any]) -> None:
    say("")
    say(f"{'measure':<44}{'value':>12}")
    say("-" * 56)
    rows = [
        ("raw encode (chunks/s)", r["raw_encode_chunks_per_s"]),
        ("ingest pipeline (chunks/s)", r["ingest_chunks_per_s"]),
        ("ingest pipeline (abstracts/s)", r["ingest_docs_per_s"]),
        ("pipeline / raw encode", r["pipeline_over_raw"]),
        ("first ingest (s)", r["ingest_seconds"]),
        ("no-change re-ingest incl. parsing (s)", r["reingest_seconds"]),
        ("re-ingest speed-up (x)", r["reingest_speedup"]),
    ]
    for mode in ("dense", "bm25", "fused"):
        rows.append((f"retrieval {mode} p50 / p95 (ms)", f"{r[f'retrieval_{mode}_p50_ms']:.1f} / "
                                                        f"{r[f'retrieval_{mode}_p95_ms']:.1f}"))
    for mode in ("dense", "bm25", "fused"):
        rows.append((f"title-as-query recall@5 / MRR@5, {mode}",
                     f"{r[f'title_recall@5_{mode}']:.3f} / {r[f'title_mrr@5_{mode}']:.3f}"))
    for name, value in rows:
        say(f"{name:<44}{value:>12.2f}" if isinstance(value, float) else f"{name:<44}{value:>12}")
