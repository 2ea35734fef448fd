"""SED advisor suites: LRD classification (real and synthetic) and injected mis-specifications."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import numpy as np

from ..graph.model import load_graph
from ..sed import synthetic as syn
from ..sed.advisor import rank_actions
from ..sed.analysis import analyse
from ..sed.photometry import read_photometry
from ..settings import Settings
from .report import finish_report, markdown_table, pyplot, report_dir, wilson_interval, write_jsonl


def run_sed_eval(settings: Settings, n_synthetic: int = 2000, seed: int = 0, lrd_table: str | Path | None = None,
                 out: str | Path | None = None, log=print) -> dict:
    directory = report_dir(settings, "sed", out)
    graph = load_graph(settings.index_path)
    table = Path(lrd_table) if lrd_table else Path(str(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"))
    rows, predictions = [], []
    t0 = time.perf_counter()
    real = read_photometry(table)
    analysis = analyse(real)
    criteria, flag = analysis.criteria, analysis.lrd_flag
    evaluable = np.isfinite(flag)
    hits = int(np.sum(flag[evaluable] == 1))
    rows.append(["Kokorev+2024 LRDs flagged (real)", int(evaluable.sum()), hits / max(evaluable.sum(), 1),
                 *wilson_interval(hits, int(evaluable.sum()))])
    for i in range(len(real)):
        predictions.append({"suite": "lrd_real", "id": str(real.ids[i]), "is_lrd": analysis.is_lrd(i),
                            "lrd_score": round(float(analysis.lrd_score[i]), 3), "lrd_votes": analysis.votes(i),
                            **{c.name: None if np.isnan(c.passed[i]) else bool(c.passed[i]) for c in criteria}})
    for kind, want in (("normal", 0), ("lrd", 1)):
        phot = syn.population(kind, n_synthetic, seed=seed)
        f = analyse(phot).lrd_flag
        k = int(np.sum(f == 1))
        rows.append([f"synthetic {kind} galaxies flagged", len(phot), k / len(phot), *wilson_interval(k, len(phot))])
    misspec = {}
    for kind in syn.MISSPECIFICATIONS:
        phot = syn.misspecified(kind, max(n_synthetic // 4, 50), seed=seed + 1)
        analysed = analyse(phot)
        first = top3 = 0
        cache: dict[tuple, list] = {}
        for i in range(len(phot)):
            names = tuple(analysed.symptom_names(i))
            if names not in cache:
                cache[names] = rank_actions(graph, list(names), 3)
            ok = [syn.is_right(kind, a.parameter, a.module, a.direction) for a in cache[names]]
            first += bool(ok) and ok[0]
            top3 += any(ok)
            predictions.append({"suite": kind, "id": str(phot.ids[i]), "symptoms": list(names),
                                "top3": [a.rule_id for a in cache[names]], "right_first": bool(ok) and ok[0]})
        misspec[kind] = {"n": len(phot), "top1": first / len(phot), "top3": top3 / len(phot)}
        rows.append([f"{kind}: right action first", len(phot), first / len(phot), *wilson_interval(first, len(phot))])
        rows.append([f"{kind}: right action in top 3", len(phot), top3 / len(phot), *wilson_interval(top3, len(phot))])
    seconds = time.perf_counter() - t0
    write_jsonl(directory / "predictions.jsonl", predictions)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    labels = [r[0].replace(": ", "\n") for r in rows]
    err = np.maximum(np.array([[r[2] - r[3], r[4] - r[2]] for r in rows]).T, 0.0)  # rounding can make a bound cross
    ax.barh(labels, [r[2] for r in rows], xerr=err, color="#55A868")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    ax.set_title("SED advisor suites")
    fig.tight_layout()
    fig.savefig(directory / "sed_suites.png", dpi=110)
    plt.close(fig)
    report = {"kind": "sed", "lrd_table": str(table), "real_lrd_flag_rate": rows[0][2],
              "synthetic_normal_flag_rate": rows[1][2], "synthetic_lrd_flag_rate": rows[2][2],
              "misspecification": misspec, "seed": seed, "seconds": seconds, "plots": ["sed_suites.png"],
              "settings_fingerprint": settings.fingerprint()}
    headers = ["suite", "n", "rate", "ci95 low", "ci95 high"]
    md = ["# SED advisor evaluation", "", f"LRD table {table.name}; {n_synthetic} synthetic galaxies per population "
          f"(seed {seed}); the synthetic generators are described in astrorag/sed/synthetic.py.", "",
          markdown_table(headers, rows), "", "![sed_suites.png](sed_suites.png)"]
    return finish_report(directory, report, md, [(headers, rows)], log)
