"""The SED fit loop for the sources of a table or the flagged sources of a catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..settings import Settings
from ..types import Problem, first_problems


@dataclass
class FitRun:
    """One source's fit loop (or why it failed), with the rows that could not be read."""

    source_id: str
    path: object | None = None        # astrorag.fit.loop.FitPath
    error: str = ""
    problems: list[Problem] = field(default_factory=list)
    plot: str = ""

    def to_dict(self) -> dict:
        data = self.path.to_dict() if self.path is not None else {"source_id": self.source_id, "steps": []}
        data.update({"error": self.error, "plot": self.plot or None,
                     "read_problems": [str(p) for p in self.problems]})
        return data

    def save_json(self, folder: str | Path) -> Path:
        """Write the path as ``<source id>.fit.json`` in ``folder`` (what ``fit --json`` prints)."""
        from ..files import file_name, write_json

        return write_json(Path(folder) / f"{file_name(self.source_id)}.fit.json", self.to_dict())


def fit_sources(settings: Settings, phot, *, workers: int = 1, scheduler: str | None = None,
                plot: str | Path | None = None, progress=None, fresh: bool = False, on_round=None,
                on_source=None) -> list[FitRun]:
    """Run the fit loop on every source of ``phot``; a source that cannot be fitted is reported, the rest go on.

    ``settings.fit`` says which fitter, how many rounds (``steps``) of how many refits (``width``), the error
    floor and the sampler (live points, n_eff, seed). Refits of one round run in parallel: on dask when
    ``scheduler`` is given, else in a pool of ``workers``. Every finished fit is kept in the fit cache
    (``cache_dir/fits``), so the same call after an interruption resumes from them (``fresh`` refits everything). ``on_round(path)`` runs after each round of a source,
    ``on_source(run)`` after each source.
    """
    import contextlib

    from ..cluster import dask_client
    from ..fit import FitError, get_fitter
    from ..fit.cache import FitCache
    from ..fit.loop import run_loop
    from ..fit.scratch import sweep_stale
    from ..graph.model import load_graph

    graph = load_graph(settings.index_path)
    options = settings.fit
    chosen = get_fitter(options.fitter, options.sampler)
    for folder in sweep_stale():  # left by a fit that was killed (SIGKILL) before it could clean up
        if progress:
            progress(f"removed the scratch folder {folder} of a fit that was killed")
    cache = FitCache(settings.storage.cache_dir / "fits", enabled=not fresh)
    runs: list[FitRun] = []
    context = dask_client(scheduler, workers) if scheduler else contextlib.nullcontext()
    with context as client:
        submit = client.submit if client is not None else None
        for i in range(len(phot)):
            source = phot.source(i, error_floor=options.error_floor)
            run = FitRun(source.source_id, problems=list(phot.problems) if i == 0 else [])
            try:
                run.path = run_loop(source, graph, chosen, steps=options.steps, width=options.width, workers=workers,
                                    submit=submit, progress=progress, cache=cache, on_round=on_round)
            except (FitError, InputError) as exc:
                run.error = str(exc)
                if progress:
                    progress(f"{source.source_id}: {exc}")
            if run.path is not None and plot:
                from ..fit.plot import plot_path

                target = Path(plot) if len(phot) == 1 else Path(plot) / f"{source.source_id.replace('/', '_')}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                run.plot = str(plot_path(run.path, source, target))
            runs.append(run)
            if on_source is not None:
                on_source(run)
    if cache.summary() and progress:
        progress(cache.summary())
    return runs


def fit_file(settings: Settings, path: str | Path, source_id: str | None = None, z: float | None = None,
             flux_unit: str | None = None, records: str | Path | None = None, **options) -> FitRun:
    """The fit loop for one source of a photometry table (``astrorag fit``).

    ``records`` names a file for the fit records (``rules learn`` format), rewritten after every round so
    that a run stopped later keeps what it measured.
    """
    import json

    from ..files import write_atomically
    from ..sed.photometry import load_source, redshift_warnings

    if records and not Path(records).parent.is_dir():
        raise InputError(f"--records {records}: the folder {Path(records).parent} does not exist")

    def write_records(fit_path) -> None:
        if records:
            write_atomically(Path(records), "".join(json.dumps(r) + "\n" for r in fit_path.records))

    phot = load_source(path, source_id, z, flux_unit)
    if len(phot) == 0:
        raise InputError(f"no readable source {source_id or ''} in {Path(path).name}{first_problems(phot.problems)}")
    for warning in redshift_warnings(phot):
        if options.get("progress"):
            options["progress"](warning)
    run = fit_sources(settings, phot, on_round=write_records, **options)[0]
    if run.path is not None:
        write_records(run.path)
    return run


def flagged_ids(advice_table: str | Path) -> list[str]:
    """The ids an ``advise-catalog`` output flags as little red dots."""
    import numpy as np
    from astropy.table import Table

    table = Table.read(str(advice_table))
    if "is_lrd" not in table.colnames or "id" not in table.colnames:
        raise InputError(f"{advice_table} is not an advise-catalog output (it needs the columns id and is_lrd)")
    flags = np.asarray([str(v).strip().lower() in ("true", "1", "1.0") for v in table["is_lrd"]])
    return [str(v) for v in np.asarray(table["id"])[flags]]


def fit_catalog_file(settings: Settings, photometry: str | Path, advice_table: str | Path, out: str | Path, *,
                     z: float | None = None, flux_unit: str | None = None, limit: int | None = None,
                     **options) -> dict:
    """Fit the flagged sources of an ``advise-catalog`` output; write one JSON line per source and the
    fit records (``rules learn`` format) beside it."""
    import json

    import numpy as np

    from ..sed.photometry import read_photometry

    ids = flagged_ids(advice_table)[:limit]
    if not ids:
        raise InputError(f"{advice_table} flags no source as a little red dot: nothing to fit")
    phot = read_photometry(photometry, z=z, flux_unit=flux_unit)
    present = np.array([str(v) for v in phot.ids])
    missing = sorted(set(ids) - set(present))
    phot = phot.select(np.isin(present, ids))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = out.with_name(out.stem + ".fitlog.jsonl")
    with out.open("w") as handle, records.open("w") as log:
        def write(run: FitRun) -> None:  # each source as it finishes: an interrupted run keeps them
            handle.write(json.dumps(run.to_dict()) + "\n")
            for record in (run.path.records if run.path is not None else []):
                log.write(json.dumps(record) + "\n")
            handle.flush()
            log.flush()

        runs = fit_sources(settings, phot, on_source=write, **options)
    fitted = [r for r in runs if r.path is not None]
    return {"flagged": len(ids), "fitted": len(fitted), "failed": {r.source_id: r.error for r in runs if r.error},
            "not_in_photometry": missing, "improved": sum(bool(r.path.accepted) for r in fitted),
            "out": str(out), "fitlog": str(records),
            "seconds_per_source": round(sum(r.path.seconds for r in fitted) / max(len(fitted), 1), 1)}
