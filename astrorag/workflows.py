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
    selected = get_backend(settings, "advise", backend)
    advice = advise_source(analyse(phot), 0, load_graph(settings.index_path), selected.llm)
    if plot:
        from .sed.plot import plot_advice

        advice.plot = str(plot_advice(advice, plot))
    return AdviceRun(advice, list(phot.problems), selected.notice)


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


def learn_rules(settings: Settings, fitlog: str | Path, improvement: float = 0.2):
    """Update rule confidences from a fit log (JSONL of attempted changes) and save the graph."""
    from .graph.learn import learn, read_fitlog
    from .graph.model import graph_path, load_graph

    outcomes, problems = read_fitlog(Path(fitlog), improvement)
    graph = load_graph(settings.index_path)
    report = learn(graph, outcomes)
    report.problems = problems
    settings.index_path.mkdir(parents=True, exist_ok=True)
    graph.save(graph_path(settings.index_path))
    return report
