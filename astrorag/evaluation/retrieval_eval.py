"""Retrieval quality: recall@k, MRR and nDCG@10 at the paper level, for dense, BM25, fused and fused+graph."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..index.types import QueryParams
from ..jsonl import jsonl_lines
from ..settings import Settings
from .report import finish_report, markdown_table, pyplot, report_dir, write_jsonl

MODES = ("dense", "bm25", "fused", "fused+graph")
DEPTH = 50


def load_qrels(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"qrels file {path} does not exist")
    out = []
    for line in jsonl_lines(path):
        number, rec = line.number, line.value
        try:
            if line.error:
                raise ValueError(line.error)
            rel = rec["relevant"]
            out.append({"qid": str(rec.get("qid", number)), "query": rec["query"],
                        "relevant": [rel] if isinstance(rel, str) else list(rel)})
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{number}: expected {{\"query\": ..., \"relevant\": [ids]}} ({exc})") from None
    if not out:
        raise InputError(f"{path}: no queries")
    return out


def ranked_docs(assistant, query: str, mode: str, model_params: QueryParams | None = None) -> list[str]:
    """Papers in rank order (first chunk of each paper counts), up to DEPTH."""
    from ..graph.retrieve import graph_search
    from ..index.retrieve import reciprocal_rank_fusion
    from ..index.vectors import Hit

    base = "fused" if mode in ("fused+graph", "fused+model") else mode
    if mode == "fused+model":
        # The model-side options the assistant was given (rewrite, rescore), at the evaluation depth.
        evidence = assistant.search_passages(query, model_params.resolve(assistant.settings))
    else:
        evidence = assistant.retriever.search(query, k=DEPTH, mode=base)
    docs = list(dict.fromkeys(e.doc_id for e in evidence))
    if mode == "fused+graph":
        papers = [p for m in graph_search(assistant.graph, query, limit=5) for p in m.rule.citations]
        present = assistant.index.documents(papers)
        graph_list = [Hit(p, 0.0) for p in dict.fromkeys(papers) if p in present]
        if graph_list:
            fused = reciprocal_rank_fusion({"fused": [Hit(d, 0.0) for d in docs], "graph": graph_list},
                                           assistant.settings.retrieval.rrf_k)
            docs = [d for d, _ in fused]
    return docs[:DEPTH]


def metrics(ranked: list[str], relevant: set[str], ks: list[int]) -> dict[str, float]:
    out = {f"recall@{k}": len(set(ranked[:k]) & relevant) / len(relevant) for k in ks}
    rr = next((1.0 / (i + 1) for i, d in enumerate(ranked) if d in relevant), 0.0)
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    out.update({"mrr": rr, "ndcg@10": dcg / idcg if idcg else 0.0})
    return out


def abstention(assistant, in_corpus: list[str], off_corpus: list[str]) -> dict:
    """How the no-evidence threshold treats questions the corpus covers (false abstentions) and does not."""
    t = assistant.settings.retrieval.no_evidence_min_cosine
    inside = np.array([assistant.closest_passage(q, []) or 0.0 for q in in_corpus])
    outside = np.array([assistant.closest_passage(q, []) or 0.0 for q in off_corpus])
    return {"threshold": t, "in_corpus": len(inside), "off_corpus": len(outside),
            "false_abstention_rate": float(np.mean(inside < t)) if len(inside) else None,
            "off_corpus_abstention_rate": float(np.mean(outside < t)) if len(outside) else None,
            "closest_in_corpus_min": float(inside.min()) if len(inside) else None,
            "closest_off_corpus_max": float(outside.max()) if len(outside) else None}


def off_corpus_questions() -> list[str]:
    """The shipped off-corpus questions (cooking, sport, code...), when running from a checkout."""
    from importlib import resources

    path = Path(str(resources.files("astrorag"))).parent / "eval" / "suites" / "off_corpus_questions.jsonl"
    return [line.value["query"] for line in jsonl_lines(path)] if path.is_file() else []


def run_retrieval_eval(qrels_path: str | Path, settings: Settings, ks=(1, 3, 5, 10, 20), modes=MODES,
                       out: str | Path | None = None, log=print, rewrite: str | None = None, rescore: bool = False,
                       backend: str | None = None) -> dict:
    """Paper-level retrieval metrics per mode; with ``rewrite``/``rescore``, also the mode "fused+model"."""
    from ..assistant import Assistant
    from ..errors import BackendError

    qrels = load_qrels(qrels_path)
    wants_model = bool(rewrite or rescore)
    assistant = Assistant(settings, backend=backend if wants_model else "extractive", purpose="eval")
    if wants_model:
        if assistant.llm is None:
            assistant.close()
            raise BackendError("--rewrite/--rescore need a language model: start Ollama with the model, or give "
                               "--backend openai with a running server")
        modes = (*modes, "fused+model")
    model_params = QueryParams(k=DEPTH, mode="fused", rewrite=rewrite, rescore=rescore) if wants_model else None
    missing = [q["qid"] for q in qrels if not assistant.index.documents(q["relevant"])]
    directory = report_dir(settings, "retrieval", out)
    per_mode: dict[str, dict[str, float]] = {}
    latencies: dict[str, list[float]] = {}
    predictions = []
    ks = list(ks)
    for mode in modes:
        sums: dict[str, float] = {}
        latencies[mode] = []
        for q in qrels:
            t0 = time.perf_counter()
            ranked = ranked_docs(assistant, q["query"], mode, model_params)
            latencies[mode].append(time.perf_counter() - t0)
            m = metrics(ranked, set(q["relevant"]), ks)
            for key, value in m.items():
                sums[key] = sums.get(key, 0.0) + value
            predictions.append({"mode": mode, "qid": q["qid"], "query": q["query"], "relevant": q["relevant"],
                                "ranked": ranked[:10], **m})
        per_mode[mode] = {k: v / len(qrels) for k, v in sums.items()}
    abstain = abstention(assistant, [q["query"] for q in qrels], off_corpus_questions())
    assistant.close()
    write_jsonl(directory / "predictions.jsonl", predictions)
    plots = _plots(per_mode, latencies, ks, directory)
    best = max(per_mode, key=lambda m: (per_mode[m]["ndcg@10"], per_mode[m]["mrr"]))
    report = {"kind": "retrieval", "qrels": str(qrels_path), "n": len(qrels), "modes": per_mode,
              "best_mode": best, "latency_ms_p50": {m: float(np.percentile(l, 50) * 1000) for m, l in latencies.items()},
              "queries_without_relevant_docs_in_index": missing, "settings_fingerprint": settings.fingerprint(),
              "no_evidence": abstain, "plots": plots}
    headers = ["mode", *[f"recall@{k}" for k in ks], "mrr", "ndcg@10", "p50 ms"]
    rows = [[m, *[v[f"recall@{k}"] for k in ks], v["mrr"], v["ndcg@10"], round(report["latency_ms_p50"][m], 1)]
            for m, v in per_mode.items()]
    md = [f"# Retrieval evaluation: {Path(qrels_path).name}", "", f"{len(qrels)} queries; paper-level metrics; "
          f"settings {settings.fingerprint()}; best mode by nDCG@10: {best}.", "", markdown_table(headers, rows), "",
          *[f"![{p}]({p})" for p in plots], "",
          f"No-evidence threshold {abstain['threshold']} (cosine to the closest passage): false abstentions "
          f"{abstain['false_abstention_rate']} on these {abstain['in_corpus']} queries; off-corpus questions "
          f"abstained {abstain['off_corpus_abstention_rate']} of {abstain['off_corpus']}."]
    if missing:
        md.append(f"\n{len(missing)} queries have no relevant paper in this index: {', '.join(missing[:10])}")
    return finish_report(directory, report, md, [(headers, rows)], log)


def _plots(per_mode, latencies, ks, directory: Path) -> list[str]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for mode, v in per_mode.items():
        ax.plot(ks, [v[f"recall@{k}"] for k in ks], marker="o", label=mode)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False)
    ax.set_title("recall@k by retriever")
    fig.tight_layout()
    fig.savefig(directory / "recall_at_k.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for mode, lat in latencies.items():
        ax.hist(np.array(lat) * 1000, bins=30, alpha=0.5, label=mode)
    ax.set_xlabel("latency per query [ms]")
    ax.set_ylabel("queries")
    ax.legend(frameon=False)
    ax.set_title("retrieval latency")
    fig.tight_layout()
    fig.savefig(directory / "latency_hist.png", dpi=110)
    plt.close(fig)
    return ["recall_at_k.png", "latency_hist.png"]
