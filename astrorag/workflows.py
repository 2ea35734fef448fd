"""The flows the CLI, the app and scripts share: ingest, advise, rules upkeep. Each takes Settings and
plain arguments and returns a typed report; none prints. The CLI parses, calls one of these, prints.

Examples
--------
>>> from astrorag.settings import Settings
>>> advice = advise_file(Settings(), LRD_EXAMPLES, source_id="11219", backend="extractive")  # doctest: +SKIP
>>> advice.is_lrd, advice.actions[0].rule_id  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

from .errors import InputError
from .settings import Settings
from .types import Advice, Problem

#: The bundled development LRDs (Kokorev et al. 2024), the app's examples and the eval default.
LRD_EXAMPLES = Path(str(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"))


# ---- ingest -------------------------------------------------------------------------------------

def ingest_files(settings: Settings, paths: Sequence[str | Path], scheduler: str | None = None):
    """Read JSONL/JSON/CSV records and ingest them; with ``scheduler`` embed on dask workers.

    Returns the :class:`~astrorag.ingest.pipeline.IngestReport`, read problems included. Raises
    :class:`InputError` (listing the first problems) when no record is readable.
    """
    from .index.embedders import get_embedder
    from .index.store import Index
    from .ingest.pipeline import ingest_documents
    from .ingest.records import read_files

    result = read_files([str(p) for p in paths])
    if not result.documents:
        shown = "; ".join(str(p) for p in result.problems[:5])
        raise InputError(f"no readable records in {', '.join(map(str, paths))}"
                         f"{': ' + shown if shown else ''}; nothing ingested")
    index = Index.open(settings, create=True)
    try:
        if scheduler:
            from .cluster import dask_client

            with dask_client(scheduler) as client:
                report = ingest_documents(index, result.documents, None, settings, client=client)
        else:
            report = ingest_documents(index, result.documents, get_embedder(settings), settings)
    finally:
        index.close()
    report.problems, report.notes = result.problems, result.notes
    if not scheduler:  # dask workers embedded; this process has no torch model loaded to export from
        _leave_query_encoder(settings, report.notes)
    return report


def _leave_query_encoder(settings: Settings, notes: list[str]) -> None:
    """After a torch ingest, export the torch-free query encoder once (see index.embedders)."""
    from .index.embedders import prepare_query_embedder

    if note := prepare_query_embedder(settings):
        notes.append(note)


def ingest_remote(settings: Settings, source: str, query: str = "", count: int = 100, *,
                  ids: Sequence[str] | None = None, sort: str | None = None, fulltext: bool = False):
    """Search ADS (``source="ads"``) or arXiv (``"arxiv"``) and ingest what comes back, resumably."""
    from .index.embedders import get_embedder
    from .index.store import Index

    source = source.lower()
    if source not in ("ads", "arxiv"):
        raise InputError(f"unknown literature source {source!r}; valid names: ads, arxiv")
    if not query and not ids:
        raise InputError("give a query (or arXiv ids)")
    index = Index.open(settings, create=True)
    try:
        if source == "ads":
            from .ingest.ads_source import ingest_ads

            report = ingest_ads(query, index, get_embedder(settings), settings, rows=count, sort=sort)
        else:
            from .ingest.arxiv_source import ingest_arxiv

            report = ingest_arxiv(query, index, get_embedder(settings), settings, max_results=count,
                                  fulltext=fulltext, id_list=list(ids) if ids else None)
    finally:
        index.close()
    _leave_query_encoder(settings, report.ingest.notes)
    return report


# ---- SED advice -----------------------------------------------------------------------------------

@dataclass
class AdviceRun:
    """One ``advise`` call: the advice, rows that could not be read, and the backend's notice."""

    advice: Advice
    problems: list[Problem] = field(default_factory=list)
    notice: str = ""


def advise_file(settings: Settings, path: str | Path, source_id: str | None = None, z: float | None = None,
                flux_unit: str | None = None, model_fluxes: str | Path | None = None,
                plot: str | Path | None = None, backend: str | None = None) -> AdviceRun:
    """Read one source from a photometry table, analyse it, rank actions, write the narrative (and a plot).

    ``backend`` overrides the ``advise`` purpose's backend (``extractive`` writes the plain report).
    """
    from .graph.model import load_graph
    from .llm import get_backend
    from .sed.advisor import advise_source
    from .sed.analysis import analyse
    from .sed.photometry import load_source

    phot = load_source(path, source_id, z, flux_unit, model_fluxes)
    if len(phot) == 0:
        shown = "; ".join(str(p) for p in phot.problems[:5])
        raise InputError(f"no readable sources in {Path(path).name}{': ' + shown if shown else ''}")
    from .sed.photometry import redshift_warnings

    selected = get_backend(settings, "advise", backend)
    advice = advise_source(analyse(phot), 0, load_graph(settings.index_path), selected.llm)
    advice_notice = "\n".join([*redshift_warnings(phot), selected.notice]).strip()
    if plot:
        from .sed.plot import plot_advice

        advice.plot = str(plot_advice(advice, plot))
    return AdviceRun(advice, list(phot.problems), advice_notice)


def advise_catalog_file(settings: Settings, path: str | Path, out: str | Path, *, scheduler: str | None = None,
                        workers: int | None = None, z: float | None = None, flux_unit: str | None = None,
                        block_rows: int = 100_000, narratives: bool = False, narrative_limit: int = 100,
                        backend: str | None = None):
    """Diagnostics and LRD flags for every row of a catalog on dask; with ``narratives``, LLM narratives for
    the first flagged sources through the ``catalog`` purpose's backend (which must be a language model)."""
    from .graph.model import load_graph
    from .sed.catalog import advise_catalog
    from .sed.photometry import check_redshift

    if z is not None:
        check_redshift(z)
    llm = None
    if narratives:
        from .errors import BackendError
        from .llm import get_backend

        llm = get_backend(settings, "catalog", backend).llm
        ok, why = llm.available()
        if not ok:
            raise BackendError(f"narratives: {why}")
    report = advise_catalog(path, out, scheduler=scheduler, workers=workers, z=z, flux_unit=flux_unit,
                            block_rows=block_rows, graph=load_graph(settings.index_path), progress=settings.progress,
                            llm=llm, llm_limit=narrative_limit)
    if report.sources == 0:
        Path(out).unlink(missing_ok=True)
        shown = "; ".join(str(p) for p in report.problems[:3])
        raise InputError(f"no row of {path} could be read ({len(report.problems)} skipped"
                         f"{', e.g. ' + shown if shown else ''}); nothing was written")
    return report


# ---- the rule graph -------------------------------------------------------------------------------

def distill_rules(settings: Settings, limit: int | None = None, backend: str | None = None):
    """Ask the ``distill`` purpose's language model for rules from the index's SED-fitting passages; save."""
    from .graph.distill import distill, select_passages
    from .graph.model import graph_path, load_graph
    from .index.store import Index
    from .llm import get_backend

    llm = get_backend(settings, "distill", backend).llm
    index = Index.open(settings)
    try:
        chunks = index.chunks(index.chunk_ids())
        docs = index.documents({c.doc_id for c in chunks.values()})
        pairs = sorted(((c, docs[c.doc_id]) for c in chunks.values()), key=lambda p: (p[1].doc_id, p[0].position))
        graph = load_graph(settings.index_path)
        report = distill(graph, llm, select_passages(pairs, limit))
        graph.save(graph_path(settings.index_path))
    finally:
        index.close()
    return report


#: Keys of the fit records the rule graph has counted (graph/learn.py, record_key), beside the graph.
COUNTED_RECORDS = "counted_fit_records.json"


def learn_rules(settings: Settings, fitlog: str | Path, improvement: float = 0.2):
    """Update rule confidences from a fit log (JSONL of attempted changes) and save the graph.

    Concurrent runs take turns (a file lock around read, update and save); a record already counted, in
    this file or an earlier one, is not counted again; the graph before the update is kept for
    ``rules undo``. The report lists each rule's confidence before and after.
    """
    import json
    import shutil

    from .graph.learn import learn, read_fitlog
    from .graph.model import graph_path, load_graph
    from .locks import locked

    outcomes, problems = read_fitlog(Path(fitlog), improvement)
    folder = settings.index_path
    folder.mkdir(parents=True, exist_ok=True)
    counted = folder / COUNTED_RECORDS
    with locked(folder / "rules.lock"):
        graph = load_graph(folder)
        seen = set(json.loads(counted.read_text())) if counted.is_file() else set()
        report = learn(graph, outcomes, seen=seen)
        report.problems = problems + report.problems
        for path in (graph_path(folder), counted):  # one step of undo
            if path.is_file():
                shutil.copy2(path, path.with_name(path.name + ".before-learn"))
            else:
                path.with_name(path.name + ".before-learn").write_text("absent")
        graph.save(graph_path(folder))
        from .bundle import write_atomically

        write_atomically(counted, json.dumps(sorted(seen)))
    return report


def undo_learn(settings: Settings) -> dict[str, tuple[float, float]]:
    """Put the rule graph back as it was before the last ``rules learn``; returns each rule's confidence
    (now, restored) for the rules that change.

    Raises
    ------
    InputError
        When there is no update to undo (one step is kept).
    """
    from .graph.model import graph_path, load_graph
    from .locks import locked

    folder = settings.index_path
    graph_file, counted = graph_path(folder), folder / COUNTED_RECORDS
    kept = [p.with_name(p.name + ".before-learn") for p in (graph_file, counted)]
    with locked(folder / "rules.lock"):
        if not kept[0].is_file():
            raise InputError(f"nothing to undo: no rules learn has been run on index {settings.index_name!r} since "
                             f"the last undo")
        now = {r.rule_id: r.confidence for r in load_graph(folder).rules()}
        for backup, target in zip(kept, (graph_file, counted)):
            if backup.read_text() == "absent":
                target.unlink(missing_ok=True)
                backup.unlink()
            else:
                backup.replace(target)
        restored = {r.rule_id: r.confidence for r in load_graph(folder).rules()}
    return {rule_id: (round(now.get(rule_id, float("nan")), 4), round(value, 4))
            for rule_id, value in restored.items() if abs(now.get(rule_id, -1) - value) > 1e-9}


# ---- SED fitting ------------------------------------------------------------------------------------

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


def fit_sources(settings: Settings, phot, *, fitter: str = "bagpipes", sampler=None, steps: int = 3,
                width: int = 3, workers: int = 1, scheduler: str | None = None, plot: str | Path | None = None,
                progress=None, fresh: bool = False, on_round=None, on_source=None) -> list[FitRun]:
    """Run the fit loop on every source of ``phot``; a source that cannot be fitted is reported, the rest go on.

    Refits of one round run in parallel: on dask when ``scheduler`` is given, else in a pool of ``workers``.
    ``sampler`` is a :class:`astrorag.fit.SamplerOptions` (live points, n_eff, seed; its defaults otherwise).
    Every finished fit is kept in the fit cache (``cache_dir/fits``), so the same call after an interruption
    resumes from them (``fresh`` refits everything). ``on_round(path)`` runs after each round of a source,
    ``on_source(run)`` after each source.
    """
    import contextlib

    import numpy as np

    from .cluster import dask_client
    from .fit import FitError, get_fitter, source_photometry
    from .fit.loop import run_loop
    from .graph.model import load_graph

    from .fit.cache import FitCache
    from .fit.scratch import sweep_stale

    graph = load_graph(settings.index_path)
    chosen = get_fitter(fitter, sampler)
    for folder in sweep_stale():  # left by a fit that was killed (SIGKILL) before it could clean up
        if progress:
            progress(f"removed the scratch folder {folder} of a fit that was killed")
    cache = FitCache(settings.cache_dir / "fits", enabled=not fresh)
    runs: list[FitRun] = []
    context = dask_client(scheduler, workers) if scheduler else contextlib.nullcontext()
    with context as client:
        submit = client.submit if client is not None else None
        for i in range(len(phot)):
            single = phot.select(np.arange(len(phot)) == i)
            source = source_photometry(single, 0)
            run = FitRun(source.source_id, problems=list(phot.problems) if i == 0 else [])
            try:
                run.path = run_loop(single, graph, chosen, source, steps=steps, width=width, workers=workers,
                                    submit=submit, progress=progress, cache=cache, on_round=on_round)
            except (FitError, InputError) as exc:
                run.error = str(exc)
                if progress:
                    progress(f"{source.source_id}: {exc}")
            if run.path is not None and plot:
                from .fit.plot import plot_path

                target = Path(plot) if len(phot) == 1 else Path(plot) / f"{source.source_id.replace('/', '_')}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                run.plot = str(plot_path(run.path, source, target))
            runs.append(run)
            if on_source is not None:
                on_source(run)
    if cache.hits and progress:
        progress(f"{cache.hits} fit(s) taken from the fit cache ({cache.folder}; --fresh refits them)")
    return runs


def fit_file(settings: Settings, path: str | Path, source_id: str | None = None, z: float | None = None,
             flux_unit: str | None = None, **options) -> FitRun:
    """The fit loop for one source of a photometry table (``astrorag fit``)."""
    from .sed.photometry import load_source

    from .sed.photometry import redshift_warnings

    phot = load_source(path, source_id, z, flux_unit)
    if len(phot) == 0:
        shown = "; ".join(str(p) for p in phot.problems[:5])
        raise InputError(f"no readable source {source_id or ''} in {Path(path).name}{': ' + shown if shown else ''}")
    for warning in redshift_warnings(phot):
        if options.get("progress"):
            options["progress"](warning)
    return fit_sources(settings, phot, **options)[0]


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

    from .sed.photometry import read_photometry

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


# ---- references and bundles -------------------------------------------------------------------------

def export_bibtex(settings: Settings, *, query: str | None = None, bundle: str | Path | None = None,
                  ids: Sequence[str] = (), k: int | None = None) -> tuple[str, int]:
    """BibTeX for the papers a query retrieves, an answer bundle cites, or a list of ids; (text, entries)."""
    from .bibtex import bibtex
    from .index.store import Index
    from .types import QueryParams, normalize_arxiv_id

    chosen = [bool(query), bool(bundle), bool(ids)]
    if sum(chosen) != 1:
        raise InputError("give exactly one of --query, --bundle or --ids")
    if query:
        from .assistant import Assistant

        assistant = Assistant(settings, backend="extractive")
        try:
            evidence = assistant.retrieve(query, QueryParams(k=k, graph_rules=0))
            wanted = list(dict.fromkeys(e.doc_id for e in evidence if e.kind == "chunk" and e.doc_id))
            docs = assistant.index.documents(wanted)
        finally:
            assistant.close()
    else:
        if bundle:
            from .bundle import load_bundle

            data = load_bundle(bundle)
            cited = set(data["citations"])
            wanted = list(dict.fromkeys(e["doc_id"] for e in data["evidence"]
                                        if e.get("kind") == "chunk" and e.get("key") in cited and e.get("doc_id")))
        else:
            wanted = [normalize_arxiv_id(i) or i.strip() for i in ids]
        index = Index.open(settings)
        try:
            docs = index.documents(wanted)
            if ids and len(docs) < len(wanted):
                # a paper indexed under its arXiv id may be asked for by bibcode (or the other way round)
                for doc in index.documents().values():
                    if doc.doc_id not in docs and (doc.bibcode in wanted or doc.arxiv_id in wanted):
                        docs[doc.doc_id] = doc
        finally:
            index.close()
    ordered = [docs[i] for i in wanted if i in docs] + [d for i, d in docs.items() if i not in wanted]
    if not ordered:
        raise InputError("no indexed paper matches: check the ids, or ingest the papers first")
    return bibtex(ordered), len(ordered)
