"""Does the evidence prefer an AGN with broad Balmer lines on the development LRDs?

For each source the baseline gets an AGN the way the LRD rules add one (lrd-optical-deficit-agn: a reddened
disc, fracAGN 0.3-0.9 of the rest-optical light), fitted twice: with bagpipes' broad H-alpha/H-beta free
(``broad_lines = free``, what the rules now ask for) and with them off (hanorm = 0). The report gives ln Z of
each, the difference, the fitted broad H-alpha rest equivalent width and the CPU seconds.

Run: python eval/bench/fit_broad_lines.py --ids 1544,3992,11219,18804,18892,19416 --json out.json
(the first six rows of the development table). Each finished fit is printed as it ends.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from importlib import resources


def one_fit(job):
    source_id, broad, seed = job
    from astrorag.fit import SamplerOptions, get_fitter
    from astrorag.fit.spec import apply_action, baseline
    from astrorag.graph.model import RuleGraph
    from astrorag.sed.photometry import read_photometry
    from astrorag.settings import FitSettings

    table = resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"
    source = read_photometry(str(table), ids=[source_id]).source(0, error_floor=FitSettings.error_floor)
    action = RuleGraph.from_seeds().get("lrd-optical-deficit-agn").action
    if not broad:
        action = replace(action, also=tuple(p for p in action.also if p[0] != "broad_lines"))
    spec, _ = apply_action(baseline(source.redshift), action)
    result = get_fitter("bagpipes", SamplerOptions(seed=seed)).fit(source, spec)
    ew = result.posterior.get("agn:broad_halpha_ew_intrinsic_aa")
    return {"source": source_id, "z": round(source.redshift, 3), "broad_lines": broad, "ln_z": result.log_evidence,
            "chi2": round(result.chi2, 2), "n_bands": result.n_bands, "broad_halpha_ew_intrinsic_aa": ew,
            "seconds": round(result.seconds, 1), "quality": result.quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default="1544,3992,11219,18804,18892,19416")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ids = args.ids.split(",")
    jobs = [(s, broad, args.seed) for s in ids for broad in (True, False)]
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for row in pool.map(one_fit, jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
    from astrorag.fit.base import SamplerOptions
    from astrorag.hardware import cpu_info

    pairs = []
    for source in ids:
        on = next(r for r in rows if r["source"] == source and r["broad_lines"])
        off = next(r for r in rows if r["source"] == source and not r["broad_lines"])
        pairs.append({"source": source, "z": on["z"], "ln_z_broad": round(on["ln_z"], 2),
                      "ln_z_no_broad": round(off["ln_z"], 2), "delta_ln_z": round(on["ln_z"] - off["ln_z"], 2),
                      "chi2_broad": on["chi2"], "chi2_no_broad": off["chi2"],
                      "broad_halpha_ew_intrinsic_aa": on["broad_halpha_ew_intrinsic_aa"]})
    deltas = [p["delta_ln_z"] for p in pairs]
    report = {"bench": "fit_broad_lines", "cpu": cpu_info(), "sampler": SamplerOptions(seed=args.seed).__dict__,
              "sources": len(pairs), "prefer_broad": sum(d >= 3 for d in deltas),
              "prefer_none": sum(d <= -3 for d in deltas), "undecided": sum(-3 < d < 3 for d in deltas),
              "pairs": pairs, "fits": rows}
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "fits"}, indent=1))


if __name__ == "__main__":
    main()
