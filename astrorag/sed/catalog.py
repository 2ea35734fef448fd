"""``advise-catalog``: diagnostics and LRD flags for every source of a large catalog, on dask.

The catalog is cut into blocks of rows (byte ranges of a CSV, row ranges of Parquet/FITS); each
dask task reads only the columns it needs, runs the vectorised diagnostics and returns a small
table; the driver writes results in input order as they arrive, so memory stays bounded by a few
blocks whatever the catalog size. Any dask-distributed scheduler works; a LocalCluster is the default.
"""

from __future__ import annotations

import contextlib
import csv
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..graph.model import RuleGraph
from ..types import Problem
from . import symptoms as symp
from .advisor import rank_actions
from .analysis import analyse
from .photometry import ID_COLUMNS, Z_COLUMNS, build, detect_columns, read_csv_block

OUTPUT_DIAGNOSTICS = ("beta_uv", "beta_opt", "turnover_um", "balmer_break_mag", "red_excess_mag", "mir_slope",
                      "chi2_red", "optical_slope_line_free", "excess_line_free_mag", "line_ew_needed_aa",
                      "line_ew_fit_aa", "line_reading_p")


@dataclass
class CatalogReport:
    sources: int = 0
    lrd: int = 0
    unclassifiable: int = 0
    seconds: float = 0.0
    process_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    workers: int = 0
    blocks: int = 0
    in_process: bool = False  # one block: no cluster was started
    out: str = ""
    problems: list[Problem] = field(default_factory=list)
    narratives: dict = field(default_factory=dict)
    unexplained: int | None = None  # with amortized posteriors: sources the baseline cannot explain

    @property
    def rate(self) -> float:
        return self.sources / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        """The run's report as ``advise-catalog --json`` prints it."""
        return {"sources": self.sources, "lrd": self.lrd, "unclassifiable": self.unclassifiable,
                "seconds": self.seconds, "sources_per_s": self.rate,
                "sources_per_s_after_start": self.sources / max(self.process_seconds, 1e-9),
                "peak_memory_mb": self.peak_memory_mb, "workers": self.workers, "out": self.out,
                "skipped_rows": len(self.problems), "narratives": self.narratives, "unexplained": self.unexplained}

    def summary(self) -> str:
        extra = ""
        if self.narratives:
            n = self.narratives
            extra = (f"; {n['count']} LLM narratives in {n['seconds']:.1f} s ({n['concurrency']} in parallel, "
                     f"{n['prompt_tokens']} prompt + {n['output_tokens']} output tokens) -> {n['path']}")
        return self._base() + extra

    def _base(self) -> str:
        where = ("1 block in this process" if self.in_process else
                 f"({self.sources / max(self.process_seconds, 1e-9):,.0f}/s after the cluster started), "
                 f"{self.blocks} blocks on {self.workers} workers")
        return (f"{self.sources} sources in {self.seconds:.1f} s: {self.rate:,.0f} sources/s overall, "
                f"{where}; {self.lrd} flagged as LRD, "
                f"{self.unclassifiable} not classifiable; "
                + (f"{self.unexplained} unexplained by the baseline (amortized posteriors); "
                   if self.unexplained is not None else "")
                + f"{len(self.problems)} rows skipped; "
                f"peak memory {self.peak_memory_mb:,.0f} MB (driver + workers); wrote {self.out}")


def needed_columns(header: list[str], flux_unit: str | None) -> tuple[list[str], list[str]]:
    """The columns a block must read, and those of them that are numbers (ids are text: "UNCOVER-DR3:1012")."""
    bands, _ = detect_columns(header, flux_unit)
    if not bands:
        raise InputError(f"no photometry columns among {', '.join(header[:15])}...")
    lower = {h.lower(): h for h in header}
    numeric = [c for b in bands for c in (b.flux, b.err, *(x for alt in b.alternates for x in alt)) if c]
    numeric += [lower[c] for c in (*Z_COLUMNS, "compactness") if c in lower]
    ids = [lower[c] for c in ID_COLUMNS if c in lower][:1]
    return list(dict.fromkeys([*ids, *numeric])), list(dict.fromkeys(numeric))


def csv_blocks(path: Path, block_rows: int) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Header and (byte start, byte end, first line number) of blocks of about ``block_rows`` lines."""
    with open(path, "rb") as fh:
        head = fh.readline()
        header = next(csv.reader([head.decode("utf-8", "replace")]))
        blocks, start, count = [], fh.tell(), 0
        block_start, block_line = start, 2
        while chunk := fh.read(1 << 24):
            pos = 0
            while True:
                needed = block_rows - count
                idx = -1
                for _ in range(needed):
                    idx = chunk.find(b"\n", pos)
                    if idx < 0:
                        break
                    pos = idx + 1
                    count += 1
                if idx < 0 and count < block_rows:
                    break
                end = start + pos
                blocks.append((block_start, end, block_line))
                block_line += count
                block_start, count = end, 0
            start += len(chunk)
        if start > block_start:
            blocks.append((block_start, start, block_line))
    return header, blocks


def process_block(path: str, kind: str, start: int, end: int, first_line: int, header: list[str],
                  needed: list[str], numeric: list[str], z: float | None, flux_unit: str | None,
                  keep: int = 0, extra: Callable | None = None) -> tuple[dict, list[Problem]]:
    """One dask task: read a block, run the vectorised diagnostics (and ``extra(phot)``'s columns, e.g. the
    amortized posteriors), return plain arrays."""
    if kind == "csv":
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        cols, lines, problems = read_csv_block(data, header, first_line, path, numeric=numeric)
        cols = {k: v for k, v in cols.items() if k in needed}
    elif kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path).read_row_group(start, columns=needed)
        cols = {k: table.column(k).to_numpy(zero_copy_only=False) for k in needed}
        lines, problems = np.arange(first_line, first_line + table.num_rows), []
    else:  # fits
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            hdu = next(h for h in hdul if isinstance(h, fits.BinTableHDU))
            rows = hdu.data[start:end]
            cols = {k: np.asarray(rows[k]) for k in needed}
        lines, problems = np.arange(first_line, first_line + (end - start)), []
    phot = build(cols, lines, flux_unit, z, problems, strict_bands=False, source=path)
    analysis = analyse(phot)
    flag = analysis.lrd_flag
    out = {"id": phot.ids.astype(str), "line": phot.lines, "z": phot.z, "is_lrd": flag,
           "lrd_score": analysis.lrd_score, "lrd_likeness": analysis.lrd_likeness,
           "lrd_votes": _vote_strings(analysis)}
    columns = analysis.diagnostics.columns()
    for key in OUTPUT_DIAGNOSTICS:
        out[key] = columns[key]
    out["line_boosted_bands"] = _boosted_strings(analysis.diagnostics)
    for c in analysis.criteria:
        out[f"crit_{c.name}"] = c.passed
    out["symptom_mask"] = symp.bitmask(analysis.symptoms)
    if extra is not None:
        out.update(extra(phot))
    if keep:  # photometry of the first flagged sources, for the LLM narratives the driver may write
        flagged = np.flatnonzero(flag == 1)[:keep]
        out["_flagged"] = phot.select(np.isin(np.arange(len(phot)), flagged))
    return out, problems


def _vote_strings(analysis) -> np.ndarray:
    """Comma-joined names of the criteria each source passes, built once per distinct vote mask."""
    from .criteria import unpack_votes

    names = tuple(c.name for c in analysis.criteria)
    masks, inverse = np.unique(analysis.lrd_votes, return_inverse=True)
    return np.array([",".join(unpack_votes(int(m), names)) for m in masks], dtype=object)[inverse.ravel()]


def _boosted_strings(diag) -> np.ndarray:
    """Comma-joined names of the bands holding [OIII]+H-beta, built once per distinct pattern."""
    if diag.oiii_bands is None or not len(diag.oiii_bands):
        return np.full(len(diag.beta_uv), "", dtype=object)
    patterns, inverse = np.unique(diag.oiii_bands, axis=0, return_inverse=True)
    names = [",".join(n for n, hit in zip(diag.band_names, p) if hit) for p in patterns]
    return np.array(names, dtype=object)[inverse.ravel()]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def advise_catalog(path: str | Path, out: str | Path, scheduler: str | None = None, workers: int | None = None,
                   z: float | None = None, flux_unit: str | None = None, block_rows: int = 100_000,
                   graph: RuleGraph | None = None, progress: bool = True, llm=None,
                   llm_limit: int = 100, extra: Callable | None = None) -> CatalogReport:
    """Run the advisor's deterministic part over a catalog and write one row per source; ``extra(phot)``
    adds columns per block (a picklable function: it runs on the workers)."""
    from dask.distributed import as_completed

    from ..cluster import dask_client

    t0 = time.perf_counter()
    path, out = Path(path), Path(out)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: write .parquet or .csv")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        kind = "csv"
        header, blocks = csv_blocks(path, block_rows)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        kind = "parquet"
        pf = pq.ParquetFile(path)
        header = pf.schema_arrow.names
        starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
        blocks = [(i, i + 1, int(starts[i]) + 1) for i in range(pf.num_row_groups)]
    elif suffix in (".fits", ".fit"):
        from astropy.io import fits

        kind = "fits"
        with fits.open(path, memmap=True) as hdul:
            hdu = next(h for h in hdul if isinstance(h, fits.BinTableHDU))
            header, nrows = list(hdu.columns.names), hdu.data.shape[0]
        blocks = [(s, min(s + block_rows, nrows), s + 1) for s in range(0, nrows, block_rows)]
    else:
        raise InputError(f"{path}: advise-catalog reads .csv, .parquet or .fits catalogs")
    needed, numeric = needed_columns(header, flux_unit)
    graph = graph or RuleGraph.from_seeds()
    report = CatalogReport(out=str(out), blocks=len(blocks))
    # A catalog of one block (100,000 rows by default) runs in this process: starting a LocalCluster costs
    # tens of seconds, more than the block itself.
    in_process = scheduler is None and len(blocks) == 1
    context = contextlib.nullcontext(None) if in_process else dask_client(scheduler, workers, memory_limit="3GiB")
    with context as client:
        report.workers = 1 if client is None else len(client.scheduler_info()["workers"])
        report.in_process = client is None
        t1 = time.perf_counter()
        keep = llm_limit if llm is not None else 0
        args = [(str(path), kind, s, e, line, header, needed, numeric, z, flux_unit, keep, extra)
                for s, e, line in blocks]
        if client is None:
            done = ((i, process_block(*a)) for i, a in enumerate(args))
            futures: list = []
        else:
            futures = [client.submit(process_block, *a, key=f"block-{i}-{path.name}-{a[2]}", pure=False)
                       for i, a in enumerate(args)]
            order = {f.key: i for i, f in enumerate(futures)}

            def finished():
                for future in as_completed(futures):
                    value = future.result()
                    future.release()
                    yield order[future.key], value

            done = finished()
        writer = _Writer(out)
        pending: dict[int, tuple[dict, list[Problem]]] = {}
        to_narrate: list = []
        next_index, actions_cache = 0, {}
        from tqdm.auto import tqdm

        bar = tqdm(total=len(blocks), unit="block", desc="advise-catalog", disable=not progress, file=sys.stderr)
        for index, value in done:
            pending[index] = value
            bar.update(1)
            while next_index in pending:
                result, problems = pending.pop(next_index)
                flagged = result.pop("_flagged", None)
                if flagged is not None and len(to_narrate) < llm_limit:
                    to_narrate.extend((flagged, i) for i in range(min(len(flagged), llm_limit - len(to_narrate))))
                report.problems.extend(problems)
                _finish_block(result, graph, actions_cache, report)
                writer.write(result)
                next_index += 1
        bar.close()
        writer.close()
        report.process_seconds = time.perf_counter() - t1
        if llm is not None and to_narrate:
            report.narratives = write_narratives(to_narrate, graph, llm, out.with_name(out.stem + ".narratives.jsonl"))
        worker_peaks = client.run(_peak_rss_mb) if client is not None else {}
        report.peak_memory_mb = _peak_rss_mb() + sum(worker_peaks.values())
    report.seconds = time.perf_counter() - t0
    return report


def write_narratives(items: list, graph: RuleGraph, llm, path: Path) -> dict:
    """Advice with an LLM narrative for each flagged source, requests in parallel; tokens and latency per request."""
    import json

    from .advisor import advise_source, llm_narrative

    # One analysis per block of flagged sources, done before the requests run in parallel.
    analyses = {id(phot): analyse(phot) for phot, _ in items}

    def one(item):
        phot, i = item
        advice = advise_source(analyses[id(phot)], i, graph)
        t0 = time.perf_counter()
        if not advice.actions:
            return {"id": advice.source_id, "narrative": advice.narrative, "prompt_tokens": 0, "output_tokens": 0,
                    "seconds": 0.0, "backend": "report"}
        told = llm_narrative(advice, graph, llm)
        usage = llm.last_usage
        return {"id": advice.source_id, "narrative": told.text, "dropped_citations": told.dropped,
                "degenerate": told.degenerate, "degenerate_reason": told.degenerate_reason,
                "prompt_tokens": usage.prompt_tokens, "output_tokens": usage.output_tokens,
                "seconds": round(time.perf_counter() - t0, 3), "backend": "report" if told.degenerate else llm.name,
                "top_rule": advice.actions[0].rule_id}

    t0 = time.perf_counter()
    rows = llm.map(one, items)
    with open(path, "w") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    return {"count": len(rows), "seconds": time.perf_counter() - t0, "path": str(path),
            "concurrency": llm.concurrency,
            "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rows),
            "output_tokens": sum(r["output_tokens"] or 0 for r in rows)}


def _finish_block(result: dict, graph: RuleGraph, cache: dict, report: CatalogReport) -> None:
    """Symptom names and the top action, looked up once per distinct symptom set (there are few)."""
    masks = result.pop("symptom_mask")
    uniq, inverse = np.unique(masks, return_inverse=True)
    names, rules, actions = [], [], []
    for m in uniq:
        if m not in cache:
            symptoms = symp.unpack(int(m))
            top = rank_actions(graph, symptoms, limit=1)
            cache[m] = (";".join(symptoms), top[0].rule_id if top else "", top[0].summary if top else "")
        names.append(cache[m][0]), rules.append(cache[m][1]), actions.append(cache[m][2])
    result["symptoms"] = np.array(names, dtype=object)[inverse]
    result["top_rule"] = np.array(rules, dtype=object)[inverse]
    result["top_action"] = np.array(actions, dtype=object)[inverse]
    if "unexplained" in result:
        # with amortized posteriors, the rules advise only where the baseline cannot explain the source
        explained = result["unexplained"] != 1
        result["top_rule"] = np.where(explained, "", result["top_rule"])
        result["top_action"] = np.where(explained, "", result["top_action"])
        report.unexplained = (report.unexplained or 0) + int(np.nansum(result["unexplained"] == 1))
    flag = result["is_lrd"]
    report.sources += len(flag)
    report.lrd += int(np.nansum(flag == 1))
    report.unclassifiable += int(np.isnan(flag).sum())


class _Writer:
    """Appends result blocks to a Parquet file (row groups) or a CSV file."""

    def __init__(self, out: Path):
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = out.with_name(out.name + ".partial")
        self.writer = None
        self.schema = None
        self.first = True

    def write(self, result: dict) -> None:
        import pyarrow as pa

        arrays = {}
        for k, v in result.items():
            if k == "is_lrd" or k.startswith("crit_"):
                arrays[k] = pa.array(np.where(np.isnan(v), None, v == 1).tolist(), type=pa.bool_())
            elif k in ("id", "symptoms", "top_rule", "top_action", "lrd_votes", "line_boosted_bands"):
                arrays[k] = pa.array(np.asarray(v).astype(str))
            else:
                arrays[k] = pa.array(v)
        table = pa.table(arrays)
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            table = table.cast(self.schema)  # e.g. a block whose column is all null
        if self.out.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            if self.writer is None:
                self.writer = pq.ParquetWriter(self.tmp, table.schema)
            self.writer.write_table(table)
        else:
            import pyarrow.csv as pacsv

            with open(self.tmp, "ab" if not self.first else "wb") as fh:
                pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(include_header=self.first))
        self.first = False

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.tmp.exists():
            self.tmp.replace(self.out)
