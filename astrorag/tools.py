"""The four functions astrorag offers to agents: as Gradio API endpoints and, with ``serve --mcp``, MCP tools.

Each takes and returns plain JSON types, so an MCP client (or ``gradio_client``) can call it. Retrieved paper
text in the results is data for the calling agent, never instructions.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError
from .render import answer_brief, passages_brief
from .settings import MAX_QUESTION_CHARS, Settings

#: The longest search query or symptom list a tool takes (characters): checked before any work starts.
MAX_QUERY_CHARS = 2_000


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchArgs(_Args):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(6, ge=1, le=50)
    year_min: int = Field(0, ge=0, le=3000)
    year_max: int = Field(0, ge=0, le=3000)


class AskArgs(_Args):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(6, ge=1, le=50)


class AdviseArgs(_Args):
    photometry_csv: str = Field(min_length=1)
    source_id: str = Field("", max_length=200)
    redshift: float = Field(0.0, ge=0.0, le=30.0, allow_inf_nan=False)


class RulesArgs(_Args):
    symptoms: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(8, ge=1, le=50)


def checked(model: type[_Args], **arguments: Any) -> Any:
    """The arguments validated against the tool's schema (types, sizes and ranges), before any work starts;
    a missing or wrong one is an :class:`~astrorag.errors.InputError` that names it and its limits.

    >>> checked(AskArgs, question="What are LRDs?", k=4).k
    4
    >>> checked(AskArgs, question="x", k=float("inf"))
    Traceback (most recent call last):
    ...
    astrorag.errors.InputError: k: Input should be a finite number (got inf)
    """
    given = {name: value for name, value in arguments.items() if value is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "arguments"
        if first["type"] == "missing":
            raise InputError(f"{where} is required") from None
        value = first.get("input")
        shown = f" (got {str(value)[:40]})" if not isinstance(value, (dict, list)) else \
            f" (got a {type(value).__name__})"
        raise InputError(f"{where}: {first['msg']}{shown}") from None


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

        args = checked(SearchArgs, query=query, k=k, year_min=year_min, year_max=year_max)
        params = query_params(k=args.k, year_min=args.year_min, year_max=args.year_max)
        evidence = self._open().retrieve(args.query, dataclasses.replace(params, graph_rules=0))
        return passages_brief(evidence)

    def ask(self, question: str, k: int = 6) -> dict:
        """Answer an astronomy question from the indexed papers and SED-fitting rules, with citations.

        Args:
            question: the question, e.g. "What powers little red dots?".
            k: passages to retrieve for the answer (1-50).

        Returns:
            The answer text, its citations (key, title, ids), whether the corpus had no evidence, and notices.
        """
        from .workflows import query_params

        args = checked(AskArgs, question=question, k=k)
        answer = self._open().ask(args.question, query_params(k=args.k))
        return answer_brief(answer)

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
        from .workflows import advise_csv_text

        args = checked(AdviseArgs, photometry_csv=photometry_csv, source_id=source_id,
                       redshift=float(redshift) if isinstance(redshift, int) and not isinstance(redshift, bool)
                       else redshift)
        run = advise_csv_text(self.settings, args.photometry_csv, args.source_id or None, args.redshift or None)
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

        args = checked(RulesArgs, symptoms=symptoms, limit=limit)
        return [a.to_dict() for a in rules_for_symptoms(self.settings, args.symptoms, limit=args.limit)]

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
