"""How repeatable is a baseline fit's evidence? The spread of ln Z over sampler seeds on real LRDs.

For each sampler configuration (live points, nautilus' n_eff, whether the exploration phase is discarded)
the baseline model is fitted to each source with several seeds; the report gives, per source and overall,
the range and standard deviation of ln Z, the sampler's own ln Z error, and the CPU seconds per fit. The fit
loop's defaults (astrorag.fit.base.SamplerOptions) and its noise floor (astrorag.fit.loop.LN_Z_SPREAD) come
from this measurement.

Run: python eval/bench/fit_seed_spread.py --ids 11219,44531,66116,1544 --seeds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from importlib import resources

CONFIGS = {"old": (100, 0, False), "default": (200, 1000, True), "wide": (400, 1000, True)}


def one_fit(job):
    source_id, config, seed = job
    from astrorag.fit import SamplerOptions, get_fitter
    from astrorag.fit.spec import baseline
    from astrorag.sed.photometry import read_photometry
    from astrorag.settings import FitSettings

    table = resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"
    phot = read_photometry(str(table), ids=[source_id])
    source = phot.source(0, error_floor=FitSettings.error_floor)
    n_live, n_eff, discard = CONFIGS[config]
    fitter = get_fitter("bagpipes", SamplerOptions(n_live=n_live, n_eff=n_eff, discard_exploration=discard,
                                                   seed=seed))
    result = fitter.fit(source, baseline(source.redshift))
    return {"source": source_id, "config": config, "seed": seed, "ln_z": result.log_evidence,
            "ln_z_err": result.log_evidence_err, "chi2": result.chi2, "seconds": result.seconds,
            "edges": result.at_prior_edge}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default="11219,44531,66116,1544")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--configs", default="old,default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    jobs = [(s, c, seed) for c in args.configs.split(",") for s in args.ids.split(",") for seed in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one_fit, jobs))
    from astrorag.hardware import cpu_info

    summary = {}
    for config in args.configs.split(","):
        mine = [r for r in rows if r["config"] == config]
        per_source = {}
        for source in args.ids.split(","):
            values = [r["ln_z"] for r in mine if r["source"] == source]
            per_source[source] = {"ln_z": [round(v, 2) for v in values], "range": round(max(values) - min(values), 2),
                                  "sd": round(statistics.stdev(values), 2) if len(values) > 1 else None}
        sds = [v["sd"] for v in per_source.values() if v["sd"] is not None]
        summary[config] = {"n_live": CONFIGS[config][0], "n_eff": CONFIGS[config][1],
                           "discard_exploration": CONFIGS[config][2], "per_source": per_source,
                           "pooled_sd": round(statistics.fmean([s ** 2 for s in sds]) ** 0.5, 2) if sds else None,
                           "max_range": max(v["range"] for v in per_source.values()),
                           "mean_sampler_err": round(statistics.fmean(r["ln_z_err"] for r in mine), 3),
                           "seconds_per_fit": round(statistics.fmean(r["seconds"] for r in mine), 1)}
    report = {"bench": "fit_seed_spread", "cpu": cpu_info(), "workers": args.workers, "seeds": args.seeds,
              "summary": summary, "fits": rows}
    text = json.dumps(report, indent=1)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
