"""SED advice: one source from a table, or a whole catalog on dask."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..sed.types import Advice
from ..settings import Settings
from ..types import Problem, first_problems


@dataclass
class AdviceRun:
    """One ``advise`` call: the advice, rows that could not be read, and the backend's notice."""

    advice: Advice
    problems: list[Problem] = field(default_factory=list)
    notice: str = ""

    def save_json(self, folder: str | Path) -> Path:
        """Write the advice as ``<source id>.json`` in ``folder`` (what ``advise --json`` prints)."""
        from ..files import file_name, write_json

        return write_json(Path(folder) / f"{file_name(self.advice.source_id)}.json", self.advice.to_dict())


#: What one photometry table sent as text holds: a source (or a few), not a catalog (advise-catalog is for those).
MAX_CSV_CHARS = 2_000_000
MAX_CSV_COLUMNS = 400
MAX_CSV_ROWS = 10_000


def advise_csv_text(settings: Settings, photometry_csv: str, source_id: str | None = None, z: float | None = None,
                    backend: str = "extractive") -> AdviceRun:
    """:func:`advise_file` on a small CSV table sent as text (the MCP tool's input), bounded in size first."""
    import tempfile

    if not photometry_csv.strip():
        raise InputError("photometry_csv is empty: pass the table's text, header line first")
    if len(photometry_csv) > MAX_CSV_CHARS:
        raise InputError(f"photometry_csv has {len(photometry_csv):,} characters; this tool takes up to "
                         f"{MAX_CSV_CHARS:,} (one source and its neighbours): use advise-catalog for catalogs")
    header = photometry_csv.lstrip().split("\n", 1)[0]
    if header.count(",") + 1 > MAX_CSV_COLUMNS:
        raise InputError(f"photometry_csv has {header.count(',') + 1:,} columns; at most {MAX_CSV_COLUMNS} "
                         f"(an id, a redshift and a flux and error per band)")
    if photometry_csv.count("\n") > MAX_CSV_ROWS:
        raise InputError(f"photometry_csv has more than {MAX_CSV_ROWS:,} rows: use advise-catalog for catalogs")
    with tempfile.TemporaryDirectory(prefix="astrorag-csv-") as folder:
        path = Path(folder) / "photometry.csv"
        path.write_text(photometry_csv)
        return advise_file(settings, path, source_id, z, backend=backend)


def advise_file(settings: Settings, path: str | Path, source_id: str | None = None, z: float | None = None,
                flux_unit: str | None = None, model_fluxes: str | Path | None = None,
                plot: str | Path | None = None, backend: str | None = None) -> AdviceRun:
    """Read one source from a photometry table, analyse it, rank actions, write the narrative (and a plot).

    ``backend`` overrides the ``advise`` purpose's backend (``extractive`` writes the plain report).
    """
    from ..graph.model import load_graph
    from ..llm import get_backend
    from ..sed.advisor import advise_source
    from ..sed.analysis import analyse
    from ..sed.photometry import load_source

    phot = load_source(path, source_id, z, flux_unit, model_fluxes)
    if len(phot) == 0:
        raise InputError(f"no readable sources in {Path(path).name}{first_problems(phot.problems)}")
    from ..sed.photometry import redshift_warnings

    selected = get_backend(settings, "advise", backend)
    advice = advise_source(analyse(phot), 0, load_graph(settings.index_path), selected.llm)
    advice_notice = "\n".join([*redshift_warnings(phot), selected.notice]).strip()
    if plot:
        from ..sed.plot import plot_advice

        advice.plot = str(plot_advice(advice, plot))
    return AdviceRun(advice, list(phot.problems), advice_notice)


def advise_catalog_file(settings: Settings, path: str | Path, out: str | Path, *, scheduler: str | None = None,
                        workers: int | None = None, z: float | None = None, flux_unit: str | None = None,
                        block_rows: int = 100_000, narratives: bool = False, narrative_limit: int = 100,
                        backend: str | None = None, posteriors: str | None = None):
    """Diagnostics and LRD flags for every row of a catalog on dask; with ``narratives``, LLM narratives for
    the first flagged sources through the ``catalog`` purpose's backend (which must be a language model);
    with ``posteriors`` (an amortized model's key or folder), the baseline's posteriors and ``unexplained``."""
    from ..graph.model import load_graph
    from ..sed.catalog import advise_catalog
    from ..sed.photometry import check_redshift

    if not isinstance(block_rows, int) or not 1 <= block_rows <= 10_000_000:
        raise InputError(f"block_rows must be a whole number from 1 to 10,000,000, got {block_rows!r}")
    if z is not None:
        check_redshift(z)
    extra = None
    if posteriors:
        from .amortize import catalog_extra

        extra = catalog_extra(settings, posteriors)
    llm = None
    if narratives:
        from ..errors import BackendError
        from ..llm import get_backend

        llm = get_backend(settings, "catalog", backend).llm
        ok, why = llm.available()
        if not ok:
            raise BackendError(f"narratives: {why}")
    report = advise_catalog(path, out, scheduler=scheduler, workers=workers, z=z, flux_unit=flux_unit,
                            block_rows=block_rows, graph=load_graph(settings.index_path), progress=settings.progress,
                            llm=llm, llm_limit=narrative_limit, extra=extra)
    if report.sources == 0:
        Path(out).unlink(missing_ok=True)
        shown = "; ".join(str(p) for p in report.problems[:3])
        raise InputError(f"no row of {path} could be read ({len(report.problems)} skipped"
                         f"{', e.g. ' + shown if shown else ''}); nothing was written")
    return report
