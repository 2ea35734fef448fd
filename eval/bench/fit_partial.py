"""Score the sources an interrupted ``astrorag eval fit`` has finished so far, without running any more.

A full run at the product's settings (34 truths, hours on 2 cores) is resumable: the same command picks up
where it stopped. This script reads its ``sources.jsonl`` and writes the report of what is done, labelled with
how many of the planned truths it rests on, so that a partial figure is never mistaken for the full one.

    python eval/bench/fit_partial.py REPORT_DIR OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from astrorag.evaluation.fit_eval import _score
from astrorag.fit import SamplerOptions


def main(folder: str, out: str) -> None:
    entries = [json.loads(line) for line in (Path(folder) / "sources.jsonl").read_text().splitlines() if line]
    config = entries[0]["config"]
    rows = [e["row"] for e in entries if e["config"] == config]
    planned = 4 * config["per_kind"] + config["nulls"]
    options = SamplerOptions(**config["sampler"])
    report = _score(rows, options, config["steps"], config["width"], 2, config["per_kind"], config["nulls"],
                    config["seed"], {})
    report.update(complete=len(rows) == planned, n_planned=planned, n_done=len(rows), config=config,
                  note=f"PARTIAL: {len(rows)} of the {planned} planned truths are finished; the run resumes with "
                       "the same command" if len(rows) < planned else "complete")
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    Path(out).with_name(Path(out).stem + "_sources.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows))
    print(report["note"])


if __name__ == "__main__":
    main(*sys.argv[1:3])
