"""Cost per answer and per advised source, measured here and projected to a billion sources.

Tokens come from the backend when it reports them (Ollama, OpenAI-compatible servers); otherwise the prompt
a model would get is counted with cl100k_base (the encoding llama-index ships) (close to Llama 3's tokenizer for English) and output tokens are
the assumed ``output_tokens``. The projection sets the result beside Mephisto's published cost (Sun,
Ting et al. 2024, arXiv:2409.14807: about USD 1 or 15 GPU-minutes per source).
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import numpy as np

from ..jsonl import jsonl_lines
from ..settings import Settings
from .report import finish_report, markdown_table, pyplot, report_dir, write_jsonl

MEPHISTO_USD_PER_SOURCE = 1.0
MEPHISTO_GPU_MIN_PER_SOURCE = 15.0


def latest_fit_report(directory: Path | None = None) -> Path | None:
    """The newest ``eval fit`` report.json under the reports folder, if any."""
    from .report import default_reports_dir

    root = directory or default_reports_dir()
    found = sorted(root.glob("*-fit-*/report.json")) if root.is_dir() else []
    return found[-1] if found else None


def fit_cost(report_path: Path | None, fits_per_source: float) -> dict | None:
    """CPU cost of the refit loop per source, from a measured ``eval fit`` report (None without one)."""
    import json

    if report_path is None or not report_path.is_file():
        return None
    report = json.loads(report_path.read_text())
    seconds = report.get("seconds_per_fit")
    if not seconds:
        return None
    cpu_minutes = seconds * fits_per_source / 60
    return {"report": str(report_path), "seconds_per_fit": seconds, "n_live": report.get("n_live"),
            "fits_per_source": fits_per_source, "cpu_minutes_per_source": round(cpu_minutes, 2),
            "cpu": report.get("cpu"),
            "mephisto_gpu_minutes_per_source": MEPHISTO_GPU_MIN_PER_SOURCE,
            "mephisto_usd_per_source": MEPHISTO_USD_PER_SOURCE}


def run_cost(settings: Settings, backend: str | None = None, questions: int = 10, sources: int = 1_000_000,
             llm_fraction: float = 0.01, output_tokens: int = 250, prefill_tps: float = 34_000.0,
             decode_tps: float = 1_700.0, gpu_hour_usd: float = 2.5, usd_per_mtok_in: float = 0.0,
             usd_per_mtok_out: float = 0.0, billion: float = 1e9, out: str | Path | None = None, log=print,
             fit_report: str | Path | None = None, fits_per_source: float = 8.0) -> dict:
    from ..assistant import Assistant
    from ..llm.prompt import count_tokens
    from ..sed import synthetic as syn
    from ..sed.advisor import advise_source, llm_narrative, narrative_messages
    from ..sed.analysis import analyse

    directory = report_dir(settings, "cost", out)
    assistant = Assistant(settings, backend=backend, purpose="eval")
    suite = Path(str(resources.files("astrorag"))).parent / "eval" / "suites" / "research_questions.jsonl"
    qs = [line.value["query"] for line, _ in zip(jsonl_lines(suite), range(questions))] if suite.is_file() else \
        ["What powers little red dots?"] * questions
    rows = []
    for q in qs:
        # The same prompt `ask` sends: Assistant.prepare builds it for both.
        t0 = time.perf_counter()
        prepared = assistant.prepare(q)
        t1 = time.perf_counter()
        text = "".join(assistant.writer.answer(q, prepared.evidence))
        t2 = time.perf_counter()
        usage = assistant.llm.last_usage if assistant.llm is not None else None
        prompt = usage.prompt_tokens if usage and usage.prompt_tokens else \
            (prepared.prompt_tokens or count_tokens(prepared.messages))
        out_tokens = usage.output_tokens if usage and usage.output_tokens else None
        counted_by = ("the server" if usage and usage.prompt_tokens else
                      prepared.fit.get("counted_by", "cl100k_base estimate"))
        rows.append({"question": q, "retrieve_s": t1 - t0, "llm_s": t2 - t1,
                     "prompt_tokens": prompt, "output_tokens": out_tokens, "measured_tokens": out_tokens is not None,
                     "prompt_tokens_counted_by": counted_by, "answer_chars": len(text)})
    # Per advised source: the deterministic stage, vectorised, on synthetic LRD photometry.
    phot = syn.population("lrd", min(sources, 200_000), seed=1)
    t0 = time.perf_counter()
    analyse(phot)
    det_rate = len(phot) / (time.perf_counter() - t0)
    one = advise_source(analyse(phot.select(np.arange(len(phot)) == 0)), 0, assistant.graph)
    narrative = narrative_messages(one, assistant.graph)[1]
    # the model's own tokenizer where the backend has it at hand, else the cl100k_base estimate
    narrative_prompt = assistant.llm.count_tokens(narrative).tokens if assistant.llm is not None else \
        count_tokens(narrative)
    narrative_out = output_tokens
    if assistant.llm is not None and one.actions:
        t0 = time.perf_counter()
        llm_narrative(one, assistant.graph, assistant.llm)
        narrative_s = time.perf_counter() - t0
        if assistant.llm.last_usage.output_tokens:
            narrative_prompt = assistant.llm.last_usage.prompt_tokens or narrative_prompt
            narrative_out = assistant.llm.last_usage.output_tokens
    else:
        narrative_s = None
    assistant.close()
    prompt_mean = float(np.mean([r["prompt_tokens"] for r in rows]))
    out_measured = [r["output_tokens"] for r in rows if r["output_tokens"] is not None]
    out_mean = float(np.mean(out_measured)) if out_measured else float(output_tokens)
    cpu_hours = billion / det_rate / 3600.0
    llm_sources = billion * llm_fraction
    gpu_hours = llm_sources * (narrative_prompt / prefill_tps + narrative_out / decode_tps) / 3600.0
    usd = gpu_hours * gpu_hour_usd + llm_sources * (narrative_prompt * usd_per_mtok_in + narrative_out * usd_per_mtok_out) / 1e6
    projection = {
        "sources": billion, "llm_fraction": llm_fraction, "deterministic_sources_per_s_one_core": det_rate,
        "deterministic_cpu_hours": cpu_hours, "narrative_prompt_tokens": narrative_prompt,
        "narrative_output_tokens": narrative_out, "gpu_hours": gpu_hours, "usd": usd,
        "usd_per_source": usd / billion, "gpu_minutes_per_source": gpu_hours * 60 / billion,
        "assumptions": {"prefill_tokens_per_s": prefill_tps, "decode_tokens_per_s": decode_tps,
                        "gpu_hour_usd": gpu_hour_usd, "usd_per_mtok_in": usd_per_mtok_in,
                        "usd_per_mtok_out": usd_per_mtok_out, "output_tokens_if_unmeasured": output_tokens},
        "mephisto": {"usd": MEPHISTO_USD_PER_SOURCE * billion, "gpu_hours": MEPHISTO_GPU_MIN_PER_SOURCE * billion / 60,
                     "usd_per_source": MEPHISTO_USD_PER_SOURCE, "gpu_minutes_per_source": MEPHISTO_GPU_MIN_PER_SOURCE},
    }
    per_answer = {"n": len(rows), "backend": assistant.writer.name, "model": assistant.writer.model,
                  "prompt_tokens_mean": prompt_mean, "output_tokens_mean": out_mean,
                  "output_tokens_measured": bool(out_measured),
                  **{f"{s}_ms_p50": float(np.percentile([r[f"{s}_s"] for r in rows], 50) * 1000)
                     for s in ("retrieve", "llm")},
                  **{f"{s}_ms_p95": float(np.percentile([r[f"{s}_s"] for r in rows], 95) * 1000)
                     for s in ("retrieve", "llm")},
                  "narrative_llm_s": narrative_s}
    write_jsonl(directory / "predictions.jsonl", rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for stage in ("retrieve", "llm"):
        ax.hist([r[f"{stage}_s"] * 1000 for r in rows], bins=20, alpha=0.55, label=stage)
    ax.set_xlabel("latency per answer [ms]")
    ax.set_ylabel("answers")
    ax.legend(frameon=False)
    ax.set_title(f"stage latency ({assistant.writer.name})")
    fig.tight_layout()
    fig.savefig(directory / "latency_by_stage.png", dpi=110)
    plt.close(fig)
    fitting = fit_cost(Path(fit_report) if fit_report else latest_fit_report(), fits_per_source)
    report = {"kind": "cost", "per_answer": per_answer, "projection": projection, "fit_loop": fitting,
              "settings_fingerprint": settings.fingerprint(), "plots": ["latency_by_stage.png"]}
    table = [["astrorag", f"{usd:,.0f}", f"{usd / billion:.2e}", f"{gpu_hours:,.0f}", f"{gpu_hours * 60 / billion:.2e}",
              f"{cpu_hours:,.0f}"],
             ["Mephisto (published)", f"{MEPHISTO_USD_PER_SOURCE * billion:,.0f}", f"{MEPHISTO_USD_PER_SOURCE:.2e}",
              f"{MEPHISTO_GPU_MIN_PER_SOURCE * billion / 60:,.0f}", f"{MEPHISTO_GPU_MIN_PER_SOURCE:.2e}", "-"]]
    headers = ["system", "USD", "USD/source", "GPU hours", "GPU min/source", "CPU core hours"]
    stage_rows = [[s, round(per_answer[f"{s}_ms_p50"], 2), round(per_answer[f"{s}_ms_p95"], 2)]
                  for s in ("retrieve", "llm")]
    md = ["# Cost per answer and per source", "",
          f"Backend {per_answer['backend']} {per_answer['model']}; {len(rows)} questions; prompt tokens "
          f"{prompt_mean:.0f} (mean), output tokens {out_mean:.0f} ({'measured' if out_measured else 'assumed'}).", "",
          markdown_table(["stage", "p50 ms", "p95 ms"], stage_rows), "",
          f"Projection for {billion:.0e} sources: deterministic diagnostics at {det_rate:,.0f} sources/s per core; "
          f"an LLM narrative for {llm_fraction:.1%} of sources ({narrative_prompt} prompt + {narrative_out} output "
          f"tokens each) at {prefill_tps:,.0f} prefill and {decode_tps:,.0f} decode tokens/s per GPU, "
          f"USD {gpu_hour_usd}/GPU-hour.", "", markdown_table(headers, table), "",
          "![latency_by_stage.png](latency_by_stage.png)", "",
          (f"Refit loop (measured by eval fit, {fitting['report']}): {fitting['seconds_per_fit']} s per bagpipes fit "
           f"on one core of {(fitting['cpu'] or {}).get('cpu_model', 'this CPU')}, {fits_per_source:g} fits per source "
           f"-> {fitting['cpu_minutes_per_source']} CPU-minutes per source, against Mephisto's "
           f"{MEPHISTO_GPU_MIN_PER_SOURCE:g} GPU-minutes (USD {MEPHISTO_USD_PER_SOURCE:g}) per source."
           if fitting else "Refit loop: no eval fit report found; run `astrorag eval fit` to measure its CPU cost.")]
    return finish_report(directory, report, md, [(["stage", "p50 ms", "p95 ms"], stage_rows), (headers, table)], log)
