"""``astrorag bench``: speed, memory and retrieval quality, printed as a table (and JSON).

Numbers, not assertions: run it on the machine you care about and read the table.
Sections: embedding (torch and ONNX int8, raw and through the whole ingest pipeline, and their
agreement), re-ingest, retrieval latency and title-as-query quality on the sample corpus, retrieval
latency at 10k and 100k chunks, and advise-catalog throughput.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..hardware import cpu_info
from ..index.embedders import get_embedder
from ..index.retrieve import Retriever
from ..index.store import Index
from ..ingest.chunking import chunk_document, embedding_text
from ..ingest.pipeline import ingest_documents
from ..ingest.records import read_files
from ..ingest.sample import sample_corpus_path
from ..settings import Settings


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


def _timed_encode(embedder, texts) -> tuple[float, np.ndarray]:
    """Texts per second, and the vectors (kept for the agreement check, so nothing is encoded twice)."""
    embedder.encode(texts[:32])  # warm-up: the first call pays for lazy initialisation
    t0 = time.perf_counter()
    vectors = embedder.encode(texts)
    return len(texts) / (time.perf_counter() - t0), vectors


def run_bench(settings: Settings, limit: int | None = None, log: Callable[[str], Any] | None = print,
              scale: bool = True, onnx: bool = True) -> dict:
    say = log or (lambda _msg: None)
    docs = read_files([sample_corpus_path()]).documents[:limit]
    texts = [embedding_text(d.title, c) for d in docs
             for c in chunk_document(d, settings.ingest.chunk_size, settings.ingest.chunk_overlap)]
    results: dict[str, Any] = {"documents": len(docs), "chunks": len(texts), **cpu_info()}
    results["onnx_threads"] = results["cpu_cores"]  # what OnnxEmbedder gives onnxruntime (usable CPUs)
    from ..index.onnx_embed import torch_available

    with tempfile.TemporaryDirectory(prefix="astrorag-bench-") as tmp:
        # Without the torch extra, the int8 model is the embedder measured throughout and nothing is compared.
        has_torch = torch_available()
        home = settings.replace(index_dir=Path(tmp), progress=False,
                                embedding_backend="torch" if has_torch else "onnx-int8")
        main_emb = get_embedder(home)
        results.update(embedding_model=main_emb.identity, device=getattr(main_emb, "device", "cpu"),
                       embedding_backend=home.embedding.backend)
        if has_torch:
            import torch

            results["torch_threads"] = torch.get_num_threads()
        else:
            say("torch is not installed (pip install -e \".[torch]\" to compare): measuring the ONNX int8 embedder")
        say(f"sample corpus: {len(docs)} abstracts, {len(texts)} chunks; model {main_emb.identity} "
            f"({home.embedding.backend}) on {results['device']}")
        label = "torch" if has_torch else "onnx_int8"
        results[f"raw_encode_{label}_texts_per_s"], main_vectors = _timed_encode(main_emb, texts)
        results["raw_encode_chunks_per_s"] = results[f"raw_encode_{label}_texts_per_s"]
        index = Index.open(home.replace(index_name="main"), create=True)
        first = ingest_documents(index, docs, main_emb, home, progress=False)
        results[f"embed_{label}_texts_per_s"] = first.chunks_written / first.seconds
        results["ingest_chunks_per_s"] = results[f"embed_{label}_texts_per_s"]
        results["ingest_docs_per_s"] = len(docs) / first.seconds
        results["ingest_seconds"] = first.seconds
        results["pipeline_over_raw"] = results["ingest_chunks_per_s"] / results["raw_encode_chunks_per_s"]
        t0 = time.perf_counter()  # a re-ingest as a user runs it: parse the file again, find nothing changed
        again = read_files([sample_corpus_path()]).documents[:limit]
        second = ingest_documents(index, again, main_emb, home, progress=False)
        results["reingest_seconds"] = time.perf_counter() - t0
        results["reingest_speedup"] = first.seconds / results["reingest_seconds"]
        assert second.chunks_written == 0, "a no-change re-ingest wrote chunks"
        retriever = Retriever(index, main_emb, home)
        queries = [d.title for d in docs[:200]]
        retriever.search(queries[0])
        for mode in ("dense", "bm25", "fused"):
            samples = []
            for q in queries:
                t = time.perf_counter()
                retriever.search(q, k=home.retrieval.k, mode=mode)
                samples.append(time.perf_counter() - t)
            results[f"retrieval_{mode}_p50_ms"], results[f"retrieval_{mode}_p95_ms"] = _percentiles(samples)
        for mode, scores in title_query_scores(retriever, docs, k=5).items():
            for name, value in scores.items():
                results[f"title_{name}_{mode}"] = value
        index.close()
        results.update(_cold_ask(home.replace(index_name="main")))
        if onnx and has_torch:
            onnx_home = home.replace(embedding_backend="onnx-int8")
            t0 = time.perf_counter()
            onnx_emb = get_embedder(onnx_home)
            results["onnx_export_seconds"] = time.perf_counter() - t0
            results["raw_encode_onnx_int8_texts_per_s"], onnx_vectors = _timed_encode(onnx_emb, texts)
            cos = np.sum(main_vectors * onnx_vectors, axis=1)
            results["onnx_int8_min_cosine"] = float(cos.min())
            results["onnx_int8_mean_cosine"] = float(cos.mean())
            results["onnx_int8_plan"] = getattr(onnx_emb, "int8_plan", "")
            index = Index.open(onnx_home.replace(index_name="onnx"), create=True)
            rep = ingest_documents(index, docs, onnx_emb, onnx_home, progress=False)
            results["embed_onnx_int8_texts_per_s"] = rep.chunks_written / rep.seconds
            results["onnx_over_torch_ingest"] = results["embed_onnx_int8_texts_per_s"] / results["embed_torch_texts_per_s"]
            index.close()
            results.update({f"ask_cold_int8_index_{k.removeprefix('ask_cold_')}": v
                            for k, v in _cold_ask(onnx_home.replace(index_name="onnx")).items()})
        if scale:
            for n in (10_000, 100_000):
                p50, p95, build = _retrieval_at_scale(home, main_emb, n, docs)
                results[f"retrieval_{n // 1000}k_fused_p50_ms"] = p50
                results[f"retrieval_{n // 1000}k_fused_p95_ms"] = p95
                results[f"build_{n // 1000}k_seconds"] = build
            results.update(_catalog_throughput(Path(tmp)))
    results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    _table(results, say)
    return results


def _cold_ask(settings: Settings, question: str = "Why are little red dots V-shaped?", runs: int = 3) -> dict:
    """A new process answering one question from a built index (extractive backend): wall time and peak
    memory, the median of ``runs``. For a torch-built index the fp32 query encoder is exported first, as ingest
    leaves it."""
    import os
    import statistics
    import subprocess
    import sys

    from ..index.embedders import prepare_query_embedder

    prepare_query_embedder(settings)
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(settings.storage.index_dir),
               ASTRORAG_INDEX_NAME=settings.storage.index_name, ASTRORAG_PROGRESS="false")
    # The child reports its own high-water mark: the parent's rusage would count the pages it forked from.
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('VmHWM', next(l.split()[1] for l in open('/proc/self/status')"
            " if l.startswith('VmHWM')), file=sys.stderr))\n"
            f"sys.argv = ['astrorag', 'ask', {question!r}, '--backend', 'extractive']\n"
            "runpy.run_module('astrorag', run_name='__main__')\n")
    walls, peaks = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"the cold ask exited with status {proc.returncode}: {proc.stderr[-500:]}")
        peaks.append(int(next(l.split()[1] for l in proc.stderr.splitlines() if l.startswith("VmHWM"))) / 1024.0)
    return {"ask_cold_wall_s": round(statistics.median(walls), 3), "ask_cold_peak_mb": round(statistics.median(peaks), 1)}


def _retrieval_at_scale(settings: Settings, embedder, n: int, docs) -> tuple[float, float, float]:
    """Fused retrieval latency over n chunks. Vectors are random unit vectors and texts are sentences of the
    sample recombined: HNSW and BM25 latency depend on size, not on meaning, and embedding 100k real chunks
    would take an hour on this CPU."""
    rng = np.random.default_rng(0)
    sentences = [s for d in docs for s in d.abstract.split(". ") if len(s) > 40]
    s = settings.replace(index_name=f"scale{n}")
    index = Index.open(s, create=True)
    t0 = time.perf_counter()
    from ..index.types import Chunk, Document

    batch = 5000
    for start in range(0, n, batch):
        size = min(batch, n - start)
        batch_docs, chunks = [], []
        for i in range(start, start + size):
            text = ". ".join(rng.choice(sentences, 3))
            d = Document.create(title=f"synthetic {i}", abstract=text, year=int(rng.integers(2000, 2026)),
                                categories=(["astro-ph.GA", "astro-ph.CO", "astro-ph.SR"][i % 3],))
            batch_docs.append(d)
            chunks.append(Chunk.create(d.doc_id, 0, text))
        vecs = rng.normal(size=(size, embedder.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        index.write_batch(batch_docs, chunks, vecs)
    index.rebuild_bm25()
    build = time.perf_counter() - t0
    retriever = Retriever(index, embedder, s)
    queries = [d.title for d in docs[:100]]
    retriever.search(queries[0])
    samples = []
    for q in queries:
        t = time.perf_counter()
        retriever.search(q, k=s.retrieval.k, mode="fused")
        samples.append(time.perf_counter() - t)
    index.close()
    return (*_percentiles(samples), build)


def _catalog_throughput(tmp: Path, rows: int = 200_000) -> dict:
    """advise-catalog as a user runs it: its own process (so the bench's models do not count), a LocalCluster."""
    import json
    import subprocess
    import sys
    from importlib import resources

    table = Path(str(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"))
    lines = table.read_text().splitlines()
    body = "\n".join(lines[1:]) + "\n"
    path = tmp / "catalog.csv"
    with open(path, "w") as fh:
        fh.write(lines[0] + "\n")
        fh.writelines(body for _ in range(rows // (len(lines) - 1)))
    run = subprocess.run([sys.executable, "-m", "astrorag", "advise-catalog", str(path), "--out",
                          str(tmp / "catalog_out.parquet"), "--json", "--quiet"], capture_output=True, text=True,
                         check=False)
    if run.returncode != 0:
        return {"catalog_error": run.stderr[-500:]}
    report = json.loads(run.stdout)
    return {"catalog_rows": report["sources"], "catalog_sources_per_s": report["sources_per_s"],
            "catalog_sources_per_s_after_start": report["sources_per_s_after_start"],
            "catalog_peak_memory_mb": report["peak_memory_mb"]}


def _table(r: dict[str, Any], say: Callable[[str], Any]) -> None:
    say("")
    say(f"{'measure':<48}{'value':>14}")
    say("-" * 62)
    say(f"CPU: {r.get('cpu_model')}, {r.get('cpu_cores')} usable cores (host {r.get('cpu_host_cores')}), VNNI "
        f"{'yes' if r.get('cpu_vnni') else 'no'}, AMX {'yes' if r.get('cpu_amx') else 'no'}; threads: onnxruntime "
        f"{r.get('onnx_threads')}, torch {r.get('torch_threads')}")
    rows: list[tuple[str, Any]] = [
        ("cold ask, new process, extractive (wall s)", r.get("ask_cold_wall_s")),
        ("cold ask, peak memory (MB)", r.get("ask_cold_peak_mb")),
        ("cold ask on the int8 index (wall s / MB)", f"{r['ask_cold_int8_index_wall_s']:.2f} / "
         f"{r['ask_cold_int8_index_peak_mb']:.0f}" if "ask_cold_int8_index_wall_s" in r else None),
        ("raw encode, torch (chunks/s)", r.get("raw_encode_torch_texts_per_s")),
        ("raw encode, ONNX int8 (chunks/s)", r.get("raw_encode_onnx_int8_texts_per_s")),
        ("ingest pipeline, torch (chunks/s)", r.get("embed_torch_texts_per_s")),
        ("ingest pipeline, ONNX int8 (chunks/s)", r.get("embed_onnx_int8_texts_per_s")),
        ("ONNX int8 / torch ingest", r.get("onnx_over_torch_ingest")),
        ("ONNX int8 quantises", r.get("onnx_int8_plan") or None),
        ("ONNX int8 vs torch cosine, min / mean", f"{r['onnx_int8_min_cosine']:.4f} / {r['onnx_int8_mean_cosine']:.4f}"
         if "onnx_int8_min_cosine" in r else None),
        ("torch pipeline / raw encode", r.get("pipeline_over_raw")),
        (f"first ingest, {r.get('embedding_backend')} (s)", r.get("ingest_seconds")),
        ("ONNX int8 export, build + quantise + check (s)", r.get("onnx_export_seconds")),
        ("no-change re-ingest incl. parsing (s)", r.get("reingest_seconds")),
        ("re-ingest speed-up (x)", r.get("reingest_speedup")),
    ]
    for mode in ("dense", "bm25", "fused"):
        rows.append((f"retrieval {mode} p50 / p95 (ms)", f"{r[f'retrieval_{mode}_p50_ms']:.1f} / "
                                                        f"{r[f'retrieval_{mode}_p95_ms']:.1f}"))
    for n in (10, 100):
        if f"retrieval_{n}k_fused_p50_ms" in r:
            rows.append((f"fused retrieval at {n}k chunks p50 / p95 (ms)",
                         f"{r[f'retrieval_{n}k_fused_p50_ms']:.1f} / {r[f'retrieval_{n}k_fused_p95_ms']:.1f}"))
    for mode in ("dense", "bm25", "fused"):
        rows.append((f"title-as-query recall@5 / MRR@5, {mode}",
                     f"{r[f'title_recall@5_{mode}']:.3f} / {r[f'title_mrr@5_{mode}']:.3f}"))
    if "catalog_sources_per_s" in r:
        rows.append((f"advise-catalog, {r['catalog_rows']:,} rows (sources/s)", r["catalog_sources_per_s"]))
        rows.append(("advise-catalog peak memory, all processes (MB)", r["catalog_peak_memory_mb"]))
    rows.append(("bench process peak memory (MB)", r["peak_memory_mb"]))
    for name, value in rows:
        if value is None:
            continue
        say(f"{name:<48}{value:>14.2f}" if isinstance(value, float) else f"{name:<48}{value:>14}")
