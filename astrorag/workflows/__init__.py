"""The application layer: every flow the CLI, the Gradio app and the MCP tools share, one module per verb.

Each takes Settings and plain arguments (or a typed request) and returns a typed result; none prints, and
every side effect (BibTeX, bundles, records, plots) happens here. The front ends parse, call one of these
and render.

- :mod:`.ask`: a question to a checked answer and its files (:class:`AskSession`, :func:`query_params`)
- :mod:`.ingest`: records from files, NASA ADS and arXiv
- :mod:`.library`: what an index holds and whether it is sound
- :mod:`.advise`: SED advice for a source or a catalog
- :mod:`.fit`: the fit loop for a source or a catalog's flagged sources
- :mod:`.rules`: distillation, learning from fits, undo
- :mod:`.export`: BibTeX of a query's, a bundle's or listed papers
- :mod:`.amortize`: amortized posteriors: train a model for a band set, find one, calibrate it
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The bundled development LRDs (Kokorev et al. 2024), the app's examples and the eval default.
LRD_EXAMPLES = Path(str(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv"))

from .advise import AdviceRun, advise_catalog_file, advise_csv_text, advise_file
from .ask import AskOutputs, AskSession, query_params
from .export import export_bibtex
from .fit import FitRun, fit_catalog_file, fit_file, fit_sources, flagged_ids
from .ingest import ingest_files, ingest_remote
from .library import index_check, index_drop, index_info, index_list, library_summary
from .rules import (
    COUNTED_RECORDS,
    distill_rules,
    draw_rules,
    get_rule,
    learn_rules,
    list_rules,
    rules_for_symptoms,
    undo_learn,
)

__all__ = ["COUNTED_RECORDS", "LRD_EXAMPLES", "AdviceRun", "AskOutputs", "AskSession", "FitRun",
           "advise_catalog_file", "advise_csv_text", "advise_file", "distill_rules", "draw_rules", "export_bibtex",
           "fit_catalog_file", "fit_file", "fit_sources", "flagged_ids", "get_rule", "index_check", "index_drop",
           "index_info", "index_list", "ingest_files", "ingest_remote", "learn_rules", "library_summary",
           "list_rules", "query_params", "rules_for_symptoms", "undo_learn"]
