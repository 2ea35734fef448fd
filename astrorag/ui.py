"""The Gradio app: Ask (chat with sources), SED advisor and Library tabs. app.py only calls :func:`build_app`."""

from __future__ import annotations

import html
import logging
import os
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import AstroRagError
from .index.types import QueryParams
from .llm import backend_names
from .render import (
    actions_markdown,
    diagnostics_markdown,
    fit_markdown,
    library_markdown,
    link_citations,
    sources_markdown,
)
from .settings import Settings
from .workflows import LRD_EXAMPLES, AskSession

log = logging.getLogger("astrorag.app")


#: astro-ph writes $z\sim 4$: render inline and display math in answers, titles and passages.
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def _friendly(exc: Exception) -> str:
    if isinstance(exc, AstroRagError):
        return str(exc)
    log.error("unexpected error\n%s", traceback.format_exc())
    return f"Unexpected error ({exc.__class__.__name__}: {exc}). The server log has the details."


class AppState:
    """One Assistant per backend choice (backend, model, host), opened once; k and the year filters are
    per-call :class:`QueryParams`, so moving a slider reopens nothing."""

    def __init__(self, base: Settings):
        self.base = base
        self._assistants: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._files: Path | None = None

    def folder(self, kind: str) -> Path:
        """A new folder for one request's files (answer, sed, fit), removed when the server stops."""
        with self._lock:
            if self._files is None:
                import atexit
                import shutil

                # Downloads and pictures live here until the server stops (Gradio serves copies from its cache).
                self._files = Path(tempfile.mkdtemp(prefix="astrorag-app-"))
                atexit.register(shutil.rmtree, self._files, True)
        return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=self._files))

    def settings(self, backend: str, model: str, host: str) -> Settings:
        """Settings for one request. The host must be one the operator allowed (``--ollama-host``,
        ``ASTRORAG_OLLAMA_HOSTS``): a page that could name any URL would make this server fetch it."""
        host = host or self.base.llm.ollama.host
        if host not in self.base.llm.ollama.allowed_hosts:
            raise AstroRagError(f"Ollama host {host!r} is not one this server offers; choose one of "
                                f"{', '.join(self.base.llm.ollama.allowed_hosts)} (the operator adds hosts with "
                                f"ASTRORAG_OLLAMA_HOSTS)")
        return self.base.replace(backend=backend or "auto", ollama_model=model or self.base.llm.ollama.model,
                                 ollama_host=host)

    @staticmethod
    def params(k, year_min, year_max) -> QueryParams:
        from .workflows import query_params

        return query_params(k=k, year_min=year_min, year_max=year_max)

    def assistant(self, backend: str, model: str, host: str):
        from .assistant import Assistant

        settings = self.settings(backend, model, host)
        key = (settings.llm.backend, settings.llm.ollama.model, settings.llm.ollama.host)
        with self._lock:
            if key not in self._assistants:
                self._assistants[key] = Assistant(settings)
            return self._assistants[key]


def build_app(settings: Settings | None = None):
    """The Gradio Blocks app."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    state = AppState(settings or Settings.load())
    base = state.base

    def ask(message: str, history: list[dict], backend, model, host, k, ymin, ymax) -> Iterator[tuple]:
        history = list(history or [])
        if not (message or "").strip():
            yield history, gr.update(), gr.update(), "", gr.update(), gr.update()
            return
        history.append({"role": "user", "content": message})
        history.append({"role": "assistant", "content": ""})
        try:
            assistant = state.assistant(backend, model, host)
            notice = " ".join(assistant.notices)
            badge = f"**Backend:** {assistant.writer.name} ({assistant.writer.model})" + \
                (f"  \n_{html.escape(notice)}_" if notice else "")
            earlier = [{"role": m["role"], "content": m["content"]} for m in history[:-2][-6:]
                       if isinstance(m.get("content"), str)]
            text = ""
            session = AskSession(assistant, message, state.params(k, ymin, ymax), history=earlier)
            for piece in session.stream():
                text += piece
                history[-1]["content"] = text
                yield history, gr.update(), badge, "", gr.update(), gr.update()
            answer = session.answer
            history[-1]["content"] = link_citations(answer.text, answer.evidence)
            extra = "".join(f"\n\n_{html.escape(n)}_" for n in answer.notices if n not in assistant.notices)
            bib, bundle = session.downloads(state.folder("answer"))
            yield history, sources_markdown(answer), badge + extra, "", bib, bundle
        except Exception as exc:  # shown in the page, never a traceback
            history[-1]["content"] = f"⚠️ {_friendly(exc)}"
            yield history, gr.update(), gr.update(), "", gr.update(), gr.update()

    def advise(upload, example_id, source_id, z, model_file, backend, model, host):
        from .workflows import advise_file

        try:
            path = upload if upload else LRD_EXAMPLES
            wanted = (source_id or "").strip() or (example_id if not upload else None)
            out_dir = state.folder("sed")
            run = advise_file(state.settings(backend, model, host), path, wanted, float(z) if z else None,
                              model_fluxes=model_file, plot=out_dir / "sed.png", backend=backend or None)
            result = run.advice
            return (str(result.plot), diagnostics_markdown(result), actions_markdown(result),
                    result.narrative if result.backend != "report" else f"```\n{result.narrative}\n```",
                    str(run.save_json(out_dir)))
        except Exception as exc:
            raise gr.Error(_friendly(exc)) from None

    def fit(upload, example_id, source_id, z, n_live, steps):
        """Run the fit loop in a thread and show its progress in the page as it goes."""
        import queue
        import threading

        from .workflows import fit_file

        path = upload if upload else LRD_EXAMPLES
        wanted = (source_id or "").strip() or (example_id if not upload else None)
        out_dir = state.folder("fit")
        messages: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                # One process: forking a threaded web server for a pool is not safe.
                settings = state.base.replace(fitter="bagpipes", n_live=int(n_live), fit_steps=int(steps),
                                              fit_width=2)
                outcome["run"] = fit_file(settings, path, wanted, float(z) if z else None, workers=1,
                                          plot=out_dir / "fit.png", progress=messages.put)
            except Exception as exc:  # shown to the user below
                outcome["error"] = exc
            finally:
                messages.put(None)

        threading.Thread(target=work, daemon=True).start()
        log: list[str] = []
        while (message := messages.get()) is not None:
            log.append(message)
            yield gr.update(), "\n".join(f"- {m}" for m in log), gr.update()
        if "error" in outcome:
            raise gr.Error(_friendly(outcome["error"]))
        run = outcome["run"]
        if run.path is None:
            raise gr.Error(run.error)
        yield run.plot or None, fit_markdown(run.path), str(run.save_json(out_dir))

    def library_stats() -> str:
        from .workflows import library_summary

        try:
            info = library_summary(base)
            if info is None:
                return (f"No index named `{base.storage.index_name}` yet: ask a question to build it from the "
                        f"sample corpus.")
            return library_markdown(info)
        except Exception as exc:
            return f"⚠️ {_friendly(exc)}"

    def ingest_files(files, progress=gr.Progress()):
        from .workflows import ingest_files as ingest

        try:
            if not files:
                raise AstroRagError("choose one or more JSONL/JSON/CSV files first")
            progress(0.1, desc="reading and embedding records")
            report = ingest(base.replace(progress=False), [f if isinstance(f, str) else f.name for f in files])
            problems = "".join(f"\n- skipped {p}" for p in report.problems[:20])
            return f"Ingested: {report.summary()}{problems}", library_stats()
        except Exception as exc:
            return f"⚠️ {_friendly(exc)}", library_stats()

    def ingest_remote(source, query, count, progress=gr.Progress()):
        from .workflows import ingest_remote as fetch

        try:
            if not (query or "").strip():
                raise AstroRagError("type a query first")
            progress(0.05, desc=f"querying {source}")
            report = fetch(base, source, query, int(count))
            return f"{source}: {report.summary()}", library_stats()
        except Exception as exc:
            return f"⚠️ {_friendly(exc)}", library_stats()

    example_ids = _example_ids()
    with gr.Blocks(title="astrorag") as demo:
        gr.Markdown("# astrorag\nCitable answers and SED-fitting advice from the astronomy literature.")
        with gr.Accordion("Settings", open=False):
            with gr.Row():
                backend = gr.Dropdown(backend_names(), value=base.llm.backend, label="backend")
                model = gr.Textbox(value=base.llm.ollama.model, label="Ollama model")
                host = gr.Dropdown(base.llm.ollama.allowed_hosts, value=base.llm.ollama.host, label="Ollama host",
                                   allow_custom_value=False)
            with gr.Row():
                k = gr.Slider(1, 20, value=base.retrieval.k, step=1, label="passages (k)")
                # text fields: an empty one means "no limit" (a number field would show 0)
                ymin = gr.Textbox(value=str(base.retrieval.year_min or ""), label="from year", placeholder="any")
                ymax = gr.Textbox(value=str(base.retrieval.year_max or ""), label="to year", placeholder="any")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row():
                    with gr.Column(scale=3):
                        # no autoscroll: a long answer would scroll its own question out of view
                        chat = gr.Chatbot(label="astrorag", height=480, elem_id="chat", latex_delimiters=LATEX,
                                          autoscroll=False)
                        question = gr.Textbox(placeholder="Ask about astrophysics, e.g. What powers little red dots?",
                                              label="question", elem_id="question")
                        with gr.Row():
                            send = gr.Button("Ask", variant="primary", elem_id="ask-button")
                            clear = gr.Button("New conversation")
                    with gr.Column(scale=2):
                        badge = gr.Markdown("**Backend:** chosen on the first question", elem_id="backend")
                        sources = gr.Markdown("_Sources appear here._", elem_id="sources", latex_delimiters=LATEX)
                        with gr.Row():
                            bib_file = gr.File(label="cited papers (BibTeX)", elem_id="bibtex-file")
                            bundle_file = gr.File(label="reproducibility bundle (zip)", elem_id="bundle-file")
                inputs = [question, chat, backend, model, host, k, ymin, ymax]
                outputs = [chat, sources, badge, question, bib_file, bundle_file]
                # Named apart from the ask tool, which must keep the API name /ask.
                send.click(ask, inputs, outputs, api_visibility="private", api_name="chat")
                question.submit(ask, inputs, outputs, api_visibility="private", api_name="chat_submit")
                clear.click(lambda: ([], "_Sources appear here._"), None, [chat, sources], api_visibility="private")
            with gr.Tab("SED advisor", id="sed"):
                with gr.Row():
                    with gr.Column(scale=1):
                        upload = gr.File(label="photometry table (CSV, ECSV, FITS, CIGALE)", type="filepath")
                        example = gr.Dropdown(example_ids, value=example_ids[2] if len(example_ids) > 2 else None,
                                              label="or a bundled LRD (Kokorev+2024)", elem_id="example")
                        source_id = gr.Textbox(label="source id (for an uploaded table)")
                        z = gr.Number(label="redshift (0: from the table)", value=0)
                        model_file = gr.File(label="model fluxes of a fit (optional)", type="filepath")
                        run = gr.Button("Advise", variant="primary", elem_id="advise-button")
                    with gr.Column(scale=2):
                        plot = gr.Image(label="SED", type="filepath", elem_id="sed-plot")
                        narrative = gr.Markdown(elem_id="narrative", latex_delimiters=LATEX)
                with gr.Row():
                    diag_md = gr.Markdown(elem_id="diagnostics")
                    actions_md = gr.Markdown(elem_id="actions")
                download = gr.File(label="advice (JSON)")
                run.click(advise, [upload, example, source_id, z, model_file, backend, model, host],
                          [plot, diag_md, actions_md, narrative, download], api_visibility="private")
                with gr.Accordion("Fit: refit with the advised changes (bagpipes; minutes per source)", open=False):
                    with gr.Row():
                        n_live = gr.Slider(50, 400, value=base.fit.sampler.n_live, step=50, label="live points")
                        steps = gr.Slider(1, 3, value=1, step=1, label="rounds of refits")
                        fit_btn = gr.Button("Fit", elem_id="fit-button")
                    with gr.Row():
                        fit_plot = gr.Image(label="fits", type="filepath", elem_id="fit-plot")
                        fit_md = gr.Markdown(elem_id="fit-path")
                    fit_download = gr.File(label="fit path (JSON)")
                fit_btn.click(fit, [upload, example, source_id, z, n_live, steps], [fit_plot, fit_md, fit_download],
                              concurrency_limit=1, api_visibility="private")
            with gr.Tab("Library", id="library"):
                stats = gr.Markdown(library_stats(), elem_id="stats")
                refresh = gr.Button("Refresh")
                refresh.click(library_stats, None, stats, api_visibility="private")
                with gr.Row():
                    files = gr.File(label="records to ingest (JSONL/JSON/CSV)", file_count="multiple", type="filepath")
                    ingest_btn = gr.Button("Ingest files")
                with gr.Row():
                    source = gr.Radio(["arXiv", "ADS"], value="arXiv", label="source")
                    remote_query = gr.Textbox(label="query", placeholder="cat:astro-ph.GA AND abs:\"little red dots\"")
                    count = gr.Number(value=50, label="how many", precision=0)
                    remote_btn = gr.Button("Fetch and ingest")
                status = gr.Markdown()
                ingest_btn.click(ingest_files, files, [status, stats], concurrency_limit=1, api_visibility="private")
                remote_btn.click(ingest_remote, [source, remote_query, count], [status, stats], concurrency_limit=1,
                                 api_visibility="private")
        # The typed API: search_literature, ask, advise_sed, rules_for_symptoms (MCP tools with serve --mcp).
        from .tools import Tools, register

        register(gr, Tools(base))
    return demo


def _example_ids() -> list[str]:
    import csv

    with open(LRD_EXAMPLES, newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


#: Long report lines wrap instead of running off the box; table headers wrap between words, not inside one.
CSS = """
#narrative pre, #narrative code { white-space: pre-wrap; overflow-wrap: anywhere; }
#narrative { overflow-x: auto; }
#diagnostics th, #actions th, #fit-path th { word-break: normal; overflow-wrap: normal; hyphens: none; }
#diagnostics table, #actions table, #fit-path table { table-layout: auto; }
#diagnostics td:first-child { white-space: nowrap; }
"""


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
          mcp: bool = False) -> None:
    """Serve the app; with ``mcp``, also as an MCP server at /gradio_api/mcp/ (the four typed tools)."""
    credentials = None
    if auth:
        user, _, password = auth.partition(":")
        if not user or not password:
            raise AstroRagError("--auth takes USER:PASS with neither empty (an empty password protects nothing)")
        credentials = (user, password)
    demo = build_app(settings)
    if host not in ("127.0.0.1", "localhost") and not credentials:
        print(f"warning: serving on {host} without --auth: anyone who can reach it can use it")
    if mcp and credentials:
        # Gradio's MCP server calls the app back without the login, so every tool call would be refused while
        # the tool listing stayed open: refuse the combination instead of serving it half-protected.
        raise AstroRagError("serve --mcp does not work with --auth (Gradio's MCP server cannot log in to the "
                            "app): serve MCP on 127.0.0.1 without --auth and reach it through an SSH tunnel "
                            "(ssh -L 7860:127.0.0.1:7860 host)")
    if mcp:
        try:
            import mcp as _mcp  # noqa: F401  (Gradio's MCP server needs the package)
        except ImportError as exc:
            raise AstroRagError('serve --mcp needs the mcp package: pip install -e ".[app]"') from exc
        print(f"MCP server: http://{host}:{port}/gradio_api/mcp/ (streamable HTTP; SSE at /gradio_api/mcp/sse)")
    demo.queue(default_concurrency_limit=2).launch(server_name=host, server_port=port, auth=credentials, css=CSS,
                                                    show_error=False, share=False, mcp_server=mcp)
