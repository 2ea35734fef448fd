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
    criteria = analysis.criteria
    for i in range(len(real)):
        predictions.append({"suite": "lrd_real", "id": str(real.ids[i]), "z": float(real.z[i]),
                            "is_lrd": analysis.is_lrd(i), "lrd_score": round(float(analysis.lrd_score[i]), 3),
                            "lrd_likeness": round(float(analysis.lrd_likeness[i]), 3),
                            "lrd_votes": analysis.votes(i),
                            "line_boosted_bands": analysis.diagnostics.line_boosted_bands(i),
                            **{c.name: None if np.isnan(c.passed[i]) else bool(c.passed[i]) for c in criteria}})
    populations = {"lrd_real": (f"{table.name} LRDs (real)", real, analysis.lrd_flag, 1, analysis.lrd_likeness)}
    for kind, label, want, phot in (
            ("normal", "synthetic normal galaxies", 0, syn.population("normal", n_synthetic, seed=seed)),
            ("lrd", "synthetic LRDs", 1, syn.population("lrd", n_synthetic, seed=seed)),
            ("strong_line", "synthetic strong-line emitters, z 7-9", 0,
             syn.strong_line_emitters(n_synthetic, seed=seed))):
        analysed = analyse(phot)
        populations[kind] = (label, phot, analysed.lrd_flag, want, analysed.lrd_likeness)
    by_population = {}
    for key, (label, phot, flag, want, score) in populations.items():
        stats = flag_rates(flag, phot.z, score)
        stats["want"] = "flagged" if want else "not flagged"
        by_population[key] = stats
        rows.append([f"{label} flagged", stats["n"], stats["rate"], *stats["ci95"]])
    real_stats = by_population["lrd_real"]
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
    report = {"kind": "sed", "lrd_table": str(table), "real_lrd_flag_rate": real_stats["rate"],
              "synthetic_normal_flag_rate": by_population["normal"]["rate"],
              "synthetic_lrd_flag_rate": by_population["lrd"]["rate"],
              "strong_line_flag_rate": by_population["strong_line"]["rate"],
              "populations": by_population, "redshift_bins": [list(b) for b in Z_BINS],
              "misspecification": misspec, "seed": seed, "seconds": seconds, "plots": ["sed_suites.png"],
              "settings_fingerprint": settings.fingerprint()}
    headers = ["suite", "n", "rate", "ci95 low", "ci95 high"]
    bin_headers = ["population", *[_bin_name(b) for b in Z_BINS]]
    bin_rows = [[populations[key][0] + f" ({stats['want']})",
                 *[_cell(stats["bins"][_bin_name(b)]) for b in Z_BINS]] for key, stats in by_population.items()]
    md = ["# SED advisor evaluation", "", f"LRD table {table.name}; {n_synthetic} synthetic galaxies per population "
          f"(seed {seed}); the synthetic generators are described in astrorag/sed/synthetic.py. Rates count every "
          f"source in n: one the criteria cannot classify is not flagged, and is counted as unclassifiable.", "",
          markdown_table(headers, rows), "", "Flagged share by redshift (flagged / n, unclassifiable in brackets):", "",
          markdown_table(bin_headers, bin_rows), "", "![sed_suites.png](sed_suites.png)"]
    return finish_report(directory, report, md, [(headers, rows), (bin_headers, bin_rows)], log)


#: Redshift bins of the flag's rates: the false positives of strong-line emitters sit at z 7-9, where
#: [OIII]+H-beta falls in F410M/F444W.
Z_BINS = ((0.0, 6.0), (6.0, 7.0), (7.0, 8.0), (8.0, 9.0), (9.0, 99.0))


def _bin_name(b: tuple[float, float]) -> str:
    return f"z < {b[1]:g}" if b[0] == 0 else f"z > {b[0]:g}" if b[1] >= 99 else f"{b[0]:g}-{b[1]:g}"


def _cell(stats: dict) -> str:
    if not stats["n"]:
        return "-"
    return f"{stats['flagged']}/{stats['n']} = {stats['rate']:.3f} [{stats['unclassifiable']}]"


def flag_rates(flag: np.ndarray, z: np.ndarray, score: np.ndarray | None = None) -> dict:
    """The flagged share over every source (unclassifiable ones count in n), overall and per redshift bin;
    with ``score`` (the LRD likeness, 0-1, :func:`~astrorag.sed.criteria.lrd_likeness`), its median and
    16-84 % range too.

    >>> r = flag_rates(np.array([1.0, 0.0, np.nan, 1.0]), np.array([5.0, 5.5, 7.5, 8.2]))
    >>> r["n"], r["flagged"], r["unclassifiable"], r["bins"]["7-8"]
    (4, 2, 1, {'n': 1, 'flagged': 0, 'unclassifiable': 1, 'rate': 0.0, 'ci95': [0.0, 0.7935]})
    """
    def one(mask: np.ndarray) -> dict:
        n, k = int(mask.sum()), int(np.sum(flag[mask] == 1))
        low, high = wilson_interval(k, n) if n else (0.0, 0.0)
        out = {"n": n, "flagged": k, "unclassifiable": int(np.isnan(flag[mask]).sum()),
               "rate": k / n if n else 0.0, "ci95": [round(low, 4), round(high, 4)]}
        if score is not None:
            values = np.asarray(score, dtype=float)[mask]
            values = values[np.isfinite(values)]
            out["likeness"] = ({"median": round(float(np.median(values)), 3),
                                "p16": round(float(np.percentile(values, 16)), 3),
                                "p84": round(float(np.percentile(values, 84)), 3)} if values.size else None)
        return out

    z = np.asarray(z, dtype=float)
    out = one(np.ones(len(flag), dtype=bool))
    out["bins"] = {_bin_name(b): one((z >= b[0]) & (z < b[1])) for b in Z_BINS}
    return out
