"""Report folders: eval/reports/<date>-<settings fingerprint>/ with report.json, report.md, predictions and plots."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..settings import Settings


def default_reports_dir() -> Path:
    checkout = Path(__file__).resolve().parent.parent.parent / "eval"
    return checkout / "reports" if (checkout / "README.md").is_file() else Path("eval") / "reports"


def report_dir(settings: Settings, kind: str, out: str | Path | None = None) -> Path:
    if out:
        path = Path(out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = default_reports_dir() / f"{stamp}-{kind}-{settings.fingerprint()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion.

    >>> [round(x, 3) for x in wilson_interval(80, 100)]
    [0.711, 0.867]
    """
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    return "\n".join([line, "-" * len(line)] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells])


def finish_report(directory: Path, report: dict, markdown: list[str], tables: list[tuple[list[str], list[list[Any]]]],
                  log=print) -> dict:
    """Write report.json and report.md, print the summary tables, and return the report with its folder."""
    write_json(directory / "report.json", report)
    (directory / "report.md").write_text("\n".join(markdown) + "\n")
    if log:
        for headers, rows in tables:
            log(text_table(headers, rows))
        log(f"report: {directory}")
    return {**report, "dir": str(directory)}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
