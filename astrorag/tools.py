"""The four functions astrorag offers to agents: as Gradio API endpoints and, with ``serve --mcp``, MCP tools.

Each takes and returns plain JSON types, so an MCP client (or ``gradio_client``) can call it. Retrieved paper
text in the results is data for the calling agent, never instructions.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .settings import Settings

#: What one advise_sed call accepts: a source (or a few), not a catalog (advise-catalog is for those).
MAX_CSV_CHARS = 2_000_000
MAX_CSV_COLUMNS = 400
MAX_CSV_ROWS = 10_000


class Tools:
    """The tool functions bound to one settings object (one open index, opened on first use)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._assistant = None

    def _open(self):
        if self._assistant is None:
            from .assistant import Assistant

            self._assistant = Assistant(self.settings)
        return self._assistant

    def search_literature(self, query: str, k: int = 6, year_min: int = 0, year_max: int = 0) -> list[dict]:
        """Search the indexed astronomy literature (hybrid dense + BM25 retrieval) and return passages.

        Args:
            query: what to look for, in words, e.g. "Balmer break in little red dots".
            k: how many passages to return (1-50).
            year_min: earliest publication year to include (0: no limit).
            year_max: latest publication year to include (0: no limit).

        Returns:
            Passages, best first: key, title, arXiv id, bibcode, year, text, and the fused score.
        """
        import dataclasses

        from .workflows import query_params

        params = query_params(k=max(1, min(int(k), 50)), year_min=year_min, year_max=year_max)
        evidence = self._open().retrieve(query, dataclasses.replace(params, graph_rules=0))
        return [{"key": e.key, "title": e.title, "arxiv_id": e.arxiv_id, "bibcode": e.bibcode, "year": e.year,
                 "url": e.url, "text": e.text, "score": round(float(e.fused_score), 4)} for e in evidence]

    def ask(self, question: str, k: int = 6) -> dict:
        """Answer an astronomy question from the indexed papers and SED-fitting rules, with citations.

        Args:
            question: the question, e.g. "What powers little red dots?".
            k: passages to retrieve for the answer (1-50).

        Returns:
            The answer text, its citations (key, title, ids), whether the corpus had no evidence, and notices.
        """
        from .workflows import query_params

        answer = self._open().ask(question, query_params(k=max(1, min(int(k), 50))))
        return {"answer": answer.text, "no_evidence": answer.no_evidence, "backend": answer.backend,
                "citations": [{"key": e.key, "kind": e.kind, "title": e.title, "arxiv_id": e.arxiv_id,
                               "bibcode": e.bibcode, "rule_id": e.rule_id, "url": e.url} for e in answer.citations],
                "notices": answer.notices}

    def advise_sed(self, photometry_csv: str, source_id: str = "", redshift: float = 0.0) -> dict:
        """Diagnose a galaxy's SED from its photometry and rank the SED-fitting changes the rules advise.

        Args:
            photometry_csv: a CSV table as text: an id column, a redshift column (or give redshift), and
                <band>_flux / <band>_fluxerr columns in uJy (e.g. f444w_flux, f444w_fluxerr).
            source_id: the row to diagnose (empty: the first row).
            redshift: the source's redshift (0: take it from the table).

        Returns:
            Diagnostics, the LRD verdict with the criteria passed, symptoms, ranked actions with their rules and
            papers (and who contests them), and a plain-text report.
        """
        from .errors import InputError
        from .workflows import advise_file

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
        with tempfile.TemporaryDirectory(prefix="astrorag-mcp-") as folder:
            path = Path(folder) / "photometry.csv"
            path.write_text(photometry_csv)
            run = advise_file(self.settings, path, source_id or None, redshift or None, backend="extractive")
        data = run.advice.to_dict()
        data["read_problems"] = [str(p) for p in run.problems]
        return data

    def rules_for_symptoms(self, symptoms: str, limit: int = 8) -> list[dict]:
        """The SED-fitting rules that match a set of symptoms, best first, with their papers for and against.

        Args:
            symptoms: comma-separated symptom names or plain words, e.g. "v_shaped_sed, optical_underestimated"
                or "mid-IR underestimated".
            limit: at most this many actions (1-50).

        Returns:
            Ranked actions: rule id, what to change, score, confidence, matched symptoms, papers, dissent.
        """
        from .workflows import rules_for_symptoms

        return [a.to_dict() for a in rules_for_symptoms(self.settings, symptoms, limit=max(1, min(int(limit), 50)))]

    def close(self) -> None:
        if self._assistant is not None:
            self._assistant.close()
            self._assistant = None


TOOL_NAMES = ("search_literature", "ask", "advise_sed", "rules_for_symptoms")


def _as_json(call):
    """Run a tool: its result as JSON text (what an MCP client or an agent parses), and astrorag's own
    errors as ``gr.Error`` so the caller reads the message instead of Gradio's generic one."""
    import gradio as gr

    from .errors import AstroRagError

    try:
        return json.dumps(call(), ensure_ascii=False, default=str)
    except AstroRagError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc
    except (ValueError, TypeError) as exc:  # arguments of the wrong kind (e.g. k="many")
        raise gr.Error(f"invalid argument: {exc}", print_exception=False) from exc


def register(gr, tools: Tools) -> None:
    """Add the tools to the Gradio Blocks being built, as typed API endpoints (MCP tools with --mcp).

    Each returns JSON text: an object (ask, advise_sed) or a list of objects (search_literature,
    rules_for_symptoms).
    """
    def search_literature(query: str, k: int = 6, year_min: int = 0, year_max: int = 0) -> str:
        return _as_json(lambda: tools.search_literature(query, k, year_min, year_max))

    def ask(question: str, k: int = 6) -> str:
        return _as_json(lambda: tools.ask(question, k))

    def advise_sed(photometry_csv: str, source_id: str = "", redshift: float = 0.0) -> str:
        return _as_json(lambda: tools.advise_sed(photometry_csv, source_id, redshift))

    def rules_for_symptoms(symptoms: str, limit: int = 8) -> str:
        return _as_json(lambda: tools.rules_for_symptoms(symptoms, limit))

    for fn in (search_literature, ask, advise_sed, rules_for_symptoms):
        fn.__doc__ = getattr(Tools, fn.__name__).__doc__
        gr.api(fn, api_name=fn.__name__)
