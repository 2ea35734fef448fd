"""Command line: turns arguments into Settings, calls the library, turns errors into messages."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from . import __version__
from .errors import AstroRagError
from .settings import Settings


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("index and settings")
    g.add_argument("--index", dest="index_name", help="index name (default: 'default', or ASTRORAG_INDEX_NAME)")
    g.add_argument("--index-dir", help="folder holding indexes (or ASTRORAG_INDEX_DIR)")
    g.add_argument("--config", help="TOML settings file (or ASTRORAG_CONFIG)")
    g.add_argument("--embedding-model", help="sentence-transformers model name or path")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _retrieval_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, help="number of passages to retrieve")
    p.add_argument("--mode", dest="retrieval_mode", choices=["dense", "bm25", "fused"], help="retriever")
    p.add_argument("--year-min", type=int, help="only papers from this year on")
    p.add_argument("--year-max", type=int, help="only papers up to this year")
    p.add_argument("--category", help="arXiv category (astro-ph.GA) or archive (astro-ph)")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="astrorag", description="Citable answers and SED-fitting advice "
                                     "from the astronomy literature, offline.")
    parser.add_argument("--version", action="version", version=f"astrorag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = sub.add_parser("ingest", help="add papers to an index").add_subparsers(dest="source", required=True)
    files = ingest.add_parser("files", parents=[common], help="JSONL/JSON/CSV files of arXiv- or ADS-style records")
    files.add_argument("paths", nargs="+", metavar="PATH")
    files.add_argument("--scheduler", help="embed on dask workers: a scheduler address, or 'local' for a LocalCluster")
    files.set_defaults(func=cmd_ingest_files)
    ads_p = ingest.add_parser("ads", parents=[common], help="NASA ADS search (token from ADS_API_TOKEN / ADS_DEV_KEY)")
    ads_p.add_argument("--query", required=True, help="ADS query, e.g. 'abs:\"little red dots\" year:2023-2026'")
    ads_p.add_argument("--rows", type=int, default=200, help="how many records at most (default 200)")
    ads_p.add_argument("--sort", help="ADS sort, e.g. 'citation_count desc' or 'date desc'")
    ads_p.set_defaults(func=cmd_ingest_ads)
    arx = ingest.add_parser("arxiv", parents=[common], help="arXiv API search (one request per 3 s)")
    arx.add_argument("--query", default="", help="arXiv query, e.g. 'cat:astro-ph.GA AND abs:\"little red dots\"'")
    arx.add_argument("--id", dest="ids", nargs="+", help="arXiv ids to fetch instead of (or within) a query")
    arx.add_argument("--max", type=int, default=100, help="how many results at most (default 100)")
    arx.add_argument("--fulltext", action="store_true", help="download each PDF and index its text by section")
    arx.set_defaults(func=cmd_ingest_arxiv)

    index = sub.add_parser("index", help="inspect or manage indexes").add_subparsers(dest="action", required=True)
    info = index.add_parser("info", parents=[common], help="counts, model and fingerprint of an index")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_index_info)
    lst = index.add_parser("list", parents=[common], help="indexes in the index folder")
    lst.set_defaults(func=cmd_index_list)
    rebuild = index.add_parser("rebuild", parents=[common],
                               help="re-chunk and re-embed an index from its stored records with the current settings")
    rebuild.set_defaults(func=cmd_index_rebuild)
    drop = index.add_parser("drop", parents=[common], help="delete an index folder")
    drop.add_argument("--yes", action="store_true", help="do not ask")
    drop.set_defaults(func=cmd_index_drop)

    ask = sub.add_parser("ask", parents=[common], help="answer a question with citations")
    ask.add_argument("question")
    _retrieval_flags(ask)
    ask.add_argument("--backend", help="auto (default), ollama or extractive")
    ask.add_argument("--ollama-model", help="Ollama model tag")
    ask.add_argument("--ollama-host", help="Ollama URL (or OLLAMA_HOST)")
    ask.add_argument("--json", action="store_true", help="print the answer, citations and evidence as JSON")
    ask.set_defaults(func=cmd_ask)

    rules = sub.add_parser("rules", help="the graph of SED-fitting rules").add_subparsers(dest="action", required=True)
    rlist = rules.add_parser("list", parents=[common], help="list rules")
    rlist.add_argument("--json", action="store_true")
    rlist.add_argument("--origin", choices=["seed", "distilled", "learned"])
    rlist.set_defaults(func=cmd_rules_list)
    rshow = rules.add_parser("show", parents=[common], help="one rule with its papers and neighbours")
    rshow.add_argument("rule_id")
    rshow.add_argument("--json", action="store_true")
    rshow.set_defaults(func=cmd_rules_show)
    rgraph = rules.add_parser("graph", parents=[common], help="draw the graph (or the part around a node)")
    rgraph.add_argument("--out", required=True, help="picture file, .png or .svg")
    rgraph.add_argument("--around", help="a node such as rule:att-uvopt-over, symptom:mir_underestimated, "
                        "parameter:fracAGN, paper:2409.14807")
    rgraph.add_argument("--radius", type=int, default=2)
    rgraph.set_defaults(func=cmd_rules_graph)
    rdistill = rules.add_parser("distill", parents=[common], help="ask the LLM for rules from SED-fitting passages")
    rdistill.add_argument("--limit", type=int, help="at most N passages")
    rdistill.add_argument("--backend", help="ollama (default) or another generative backend")
    rdistill.add_argument("--ollama-model")
    rdistill.add_argument("--ollama-host")
    rdistill.set_defaults(func=cmd_rules_distill)
    rlearn = rules.add_parser("learn", parents=[common], help="update rule confidences from a fit log (JSONL)")
    rlearn.add_argument("fitlog")
    rlearn.add_argument("--improvement", type=float, default=0.2,
                        help="fractional chi-square drop that counts as success (default 0.2)")
    rlearn.set_defaults(func=cmd_rules_learn)

    advise = sub.add_parser("advise", parents=[common], help="diagnose one source's SED and rank fitting actions")
    advise.add_argument("file", help="photometry table: CSV, ECSV, FITS, Parquet or a CIGALE observation file")
    advise.add_argument("--id", dest="source_id", help="source id (default: the first row)")
    advise.add_argument("--z", type=float, help="redshift (overrides the table's column)")
    advise.add_argument("--model-fluxes", help="model fluxes of a fit (CIGALE results or a per-band table)")
    advise.add_argument("--flux-unit", help="uJy, nJy, mJy, Jy or ABmag when the columns do not say")
    advise.add_argument("--plot", help="write the SED picture here (.png or .svg)")
    advise.add_argument("--backend", help="narrative writer: auto, ollama or extractive (a plain report)")
    advise.add_argument("--ollama-model")
    advise.add_argument("--ollama-host")
    advise.add_argument("--json", action="store_true")
    advise.set_defaults(func=cmd_advise)

    catalog = sub.add_parser("advise-catalog", parents=[common],
                             help="diagnostics and LRD flags for every source of a catalog, with dask")
    catalog.add_argument("file", help="CSV, Parquet or FITS catalog")
    catalog.add_argument("--out", required=True, help="output .parquet or .csv")
    catalog.add_argument("--scheduler", help="address of a dask-distributed scheduler (default: a LocalCluster)")
    catalog.add_argument("--workers", type=int, help="LocalCluster workers (default: CPU count)")
    catalog.add_argument("--z", type=float, help="one redshift for all sources")
    catalog.add_argument("--flux-unit")
    catalog.add_argument("--block-rows", type=int, default=100_000, help="rows per task")
    catalog.add_argument("--json", action="store_true", help="print the run's report as JSON")
    catalog.add_argument("--llm", action="store_true",
                         help="also write LLM narratives for flagged sources (<out>.narratives.jsonl), in parallel")
    catalog.add_argument("--llm-limit", type=int, default=100, help="at most this many narratives")
    catalog.add_argument("--backend", help="narrative backend: openai (default with --llm) or ollama")
    catalog.set_defaults(func=cmd_advise_catalog)

    ev = sub.add_parser("eval", help="the offline evaluation harness").add_subparsers(dest="suite_kind", required=True)
    mcq = ev.add_parser("mcq", parents=[common], help="multiple-choice accuracy (AstroBench JSONL, MMLU CSV, Astro-QA CSV)")
    mcq.add_argument("--suite", required=True)
    mcq.add_argument("--mode", default="auto",
                     help="closed, rag, retrieval, several joined by commas, or auto (rag with a model, else retrieval)")
    mcq.add_argument("--format", default="auto", choices=["auto", "astrobench", "mmlu", "astroqa"])
    mcq.add_argument("--backend")
    mcq.add_argument("--ollama-model")
    mcq.add_argument("--ollama-host")
    mcq.add_argument("--limit", type=int)
    mcq.add_argument("--k", type=int)
    mcq.add_argument("--out", help="report folder (default eval/reports/<date>-mcq-<fingerprint>)")
    mcq.set_defaults(func=cmd_eval_mcq)
    ret = ev.add_parser("retrieval", parents=[common], help="recall@k, MRR, nDCG for each retriever")
    ret.add_argument("--qrels", required=True, help="JSONL of {query, relevant: [ids]} (see eval/suites)")
    ret.add_argument("--out")
    ret.set_defaults(func=cmd_eval_retrieval)
    sed = ev.add_parser("sed", parents=[common], help="LRD classification and injected mis-specification suites")
    sed.add_argument("--n", type=int, default=2000, help="synthetic sources per population")
    sed.add_argument("--seed", type=int, default=0)
    sed.add_argument("--lrd-table", help="LRD photometry to classify (default: the bundled 60 Kokorev+2024 LRDs)")
    sed.add_argument("--out")
    sed.set_defaults(func=cmd_eval_sed)
    cost = ev.add_parser("cost", parents=[common], help="tokens, latency per stage, cost for a billion sources")
    cost.add_argument("--backend")
    cost.add_argument("--questions", type=int, default=10)
    cost.add_argument("--llm-fraction", type=float, default=0.01, help="share of sources that get an LLM narrative")
    cost.add_argument("--output-tokens", type=int, default=250, help="assumed when the backend does not report")
    cost.add_argument("--prefill-tps", type=float, default=34_000.0, help="GPU prefill tokens/s (H100, 8B)")
    cost.add_argument("--decode-tps", type=float, default=1_700.0, help="GPU decode tokens/s at batch 64 (H100, 8B)")
    cost.add_argument("--gpu-hour-usd", type=float, default=2.5)
    cost.add_argument("--usd-per-mtok-in", type=float, default=0.0, help="API price per million input tokens")
    cost.add_argument("--usd-per-mtok-out", type=float, default=0.0)
    cost.add_argument("--out")
    cost.set_defaults(func=cmd_eval_cost)

    srv = sub.add_parser("serve", parents=[common], help="start the Gradio app (same as python app.py)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=7860)
    srv.add_argument("--auth", help="USER:PASS")
    srv.set_defaults(func=cmd_serve)

    bench = sub.add_parser("bench", parents=[common], help="measure ingest, re-ingest, retrieval speed and quality")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--limit", type=int, help="use only the first N sample abstracts")
    bench.add_argument("--no-scale", action="store_true", help="skip the 10k/100k retrieval and catalog sections")
    bench.add_argument("--no-onnx", action="store_true", help="skip the ONNX int8 embedder")
    bench.set_defaults(func=cmd_bench)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    fields = set(Settings.__dataclass_fields__)
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if getattr(args, "quiet", False):
        overrides["progress"] = False
    return Settings.load(config_file=getattr(args, "config", None), **overrides)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_ingest_files(args: argparse.Namespace) -> int:
    from .index.embed import get_embedder
    from .index.store import Index
    from .ingest.pipeline import ingest_documents
    from .ingest.records import read_files

    settings = settings_from(args)
    result = read_files(args.paths)
    for problem in result.problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not result.documents:
        print("no readable records: nothing ingested", file=sys.stderr)
        return 1
    index = Index.open(settings, create=True)
    client = cluster = None
    try:
        if args.scheduler:
            from dask.distributed import Client, LocalCluster

            if args.scheduler == "local":
                cluster = LocalCluster(threads_per_worker=1, processes=True, dashboard_address=None)
                client = Client(cluster)
            else:
                client = Client(args.scheduler)
        report = ingest_documents(index, result.documents, get_embedder(settings) if client is None else None,
                                  settings, client=client)
    finally:
        index.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    report.problems = result.problems
    where = f" (embedded on dask: {args.scheduler})" if args.scheduler else ""
    print(f"index {settings.index_name!r}: {report.summary()}{where}")
    return 0


def cmd_ingest_ads(args: argparse.Namespace) -> int:
    from .index.embed import get_embedder
    from .index.store import Index
    from .ingest.ads_source import ingest_ads

    settings = settings_from(args)
    index = Index.open(settings, create=True)
    try:
        report = ingest_ads(args.query, index, get_embedder(settings), settings, rows=args.rows, sort=args.sort)
    finally:
        index.close()
    print(f"index {settings.index_name!r}: ADS {report.summary()}")
    return 0


def cmd_ingest_arxiv(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .index.embed import get_embedder
    from .index.store import Index
    from .ingest.arxiv_source import ingest_arxiv

    if not args.query and not args.ids:
        raise ConfigError("give --query or --id")
    settings = settings_from(args)
    index = Index.open(settings, create=True)
    try:
        report = ingest_arxiv(args.query, index, get_embedder(settings), settings, max_results=args.max,
                              fulltext=args.fulltext, id_list=args.ids)
    finally:
        index.close()
    print(f"index {settings.index_name!r}: arXiv {report.summary()}")
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from .index.store import Index

    settings = settings_from(args)
    index = Index.open(settings)
    try:
        info = index.info()
    finally:
        index.close()
    if args.json:
        _print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_index_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    root = settings.index_dir
    names = sorted(p.parent.name for p in root.glob("*/manifest.json")) if root.is_dir() else []
    if not names:
        print(f"no indexes in {root}")
    for name in names:
        manifest = json.loads((root / name / "manifest.json").read_text())
        print(f"{name}\t{manifest['embedding_model']}\t{manifest['fingerprint']}")
    return 0


def cmd_index_rebuild(args: argparse.Namespace) -> int:
    from .index.rebuild import rebuild_index

    settings = settings_from(args)
    report = rebuild_index(settings)
    print(f"index {settings.index_name!r} rebuilt: {report.summary()}")
    return 0


def cmd_index_drop(args: argparse.Namespace) -> int:
    from .index.store import Index

    settings = settings_from(args)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"refusing to delete {settings.index_path} without --yes", file=sys.stderr)
            return 1
        if input(f"delete {settings.index_path}? [y/N] ").strip().lower() != "y":
            return 1
    print("deleted" if Index.drop(settings) else f"nothing at {settings.index_path}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .assistant import Assistant
    from .types import Answer, normalize_arxiv_id

    settings = settings_from(args)
    assistant = Assistant(settings, backend=args.backend)
    try:
        for notice in assistant.notices:
            print(notice, file=sys.stderr)
        if args.json:
            _print_json(assistant.ask(args.question).to_dict())
            return 0
        answer = None
        for piece in assistant.stream(args.question):
            if isinstance(piece, Answer):
                answer = piece
            else:
                print(piece, end="", flush=True)
        print()
        assert answer is not None
        for notice in answer.notices[len(assistant.notices):]:
            print(notice, file=sys.stderr)
        if answer.citations:
            print("\nSources:")
            for ev in answer.citations:
                if ev.kind == "rule":
                    papers = ", ".join(f"arXiv:{p}" if normalize_arxiv_id(p) else p for p in ev.papers)
                    print(f"  [{ev.key}] rule {ev.rule_id}: {ev.title}\n       papers: {papers}")
                else:
                    print(f"  [{ev.key}] {ev.label} {ev.title}\n       {ev.url or ''}")
        return 0
    finally:
        assistant.close()


def _graph(settings: Settings):
    from .graph.model import load_graph

    return load_graph(settings.index_path)


def cmd_rules_list(args: argparse.Namespace) -> int:
    rules = [r for r in _graph(settings_from(args)).rules() if not args.origin or r.origin == args.origin]
    if args.json:
        _print_json([r.to_dict() for r in rules])
        return 0
    for r in rules:
        print(f"{r.rule_id:<28} {r.origin:<9} {r.confidence:.2f}  {r.describe()}")
    print(f"{len(rules)} rules")
    return 0


def cmd_rules_show(args: argparse.Namespace) -> int:
    graph = _graph(settings_from(args))
    rule = graph.get(args.rule_id)
    if args.json:
        _print_json(rule.to_dict())
        return 0
    print(f"{rule.rule_id} ({rule.origin}, confidence {rule.confidence:.2f}: prior {rule.prior_confidence:.2f}, "
          f"{rule.successes} fits improved, {rule.failures} not; found {rule.support_count}x)")
    print(f"  {rule.describe()}")
    print(f"  why: {rule.rationale}")
    if rule.supports:
        print(f"  points to: {', '.join(rule.supports)}")
    print(f"  papers: {', '.join(rule.citations) or '(fit outcomes only)'}")
    if rule.contradicted_by:
        print(f"  contradicted by: {', '.join(rule.contradicted_by)}")
    return 0


def cmd_rules_graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .graph.draw import draw

    graph = _graph(settings_from(args))
    if args.around:
        graph = graph.neighbourhood(args.around, args.radius)
    out = draw(graph, Path(args.out), title=f"around {args.around}" if args.around else "")
    print(f"wrote {out} ({graph.graph.number_of_nodes()} nodes)")
    return 0


def cmd_rules_distill(args: argparse.Namespace) -> int:
    from .graph.distill import distill, select_passages
    from .graph.model import graph_path
    from .index.store import Index
    from .llm import get_backend

    settings = settings_from(args)
    llm = get_backend(args.backend or "ollama", settings).backend
    index = Index.open(settings)
    try:
        chunks = index.chunks(index.chunk_ids())
        docs = index.documents({c.doc_id for c in chunks.values()})
        pairs = sorted(((c, docs[c.doc_id]) for c in chunks.values()), key=lambda p: (p[1].doc_id, p[0].position))
        graph = _graph(settings)
        report = distill(graph, llm, select_passages(pairs, args.limit))
        graph.save(graph_path(settings.index_path))
    finally:
        index.close()
    for reason in report.reasons:
        print(reason, file=sys.stderr)
    print(report.summary())
    return 0


def cmd_rules_learn(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .graph.learn import learn, read_fitlog
    from .graph.model import graph_path

    settings = settings_from(args)
    outcomes, problems = read_fitlog(Path(args.fitlog), args.improvement)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    graph = _graph(settings)
    report = learn(graph, outcomes)
    report.problems = problems
    settings.index_path.mkdir(parents=True, exist_ok=True)
    graph.save(graph_path(settings.index_path))
    print(report.summary())
    return 0


def cmd_advise(args: argparse.Namespace) -> int:
    from .sed.advisor import advise_source, analyse
    from .sed.photometry import load_source
    from .sed.plot import plot_advice

    settings = settings_from(args)
    phot = load_source(args.file, args.source_id, args.z, args.flux_unit, args.model_fluxes)
    for problem in phot.problems:
        print(f"skipped {problem}", file=sys.stderr)
    if len(phot) == 0:
        print("no readable sources", file=sys.stderr)
        return 1
    llm = None
    backend = args.backend or "extractive"
    if backend != "extractive":
        from .llm import get_backend

        selected = get_backend(backend, settings)
        if selected.notice:
            print(selected.notice, file=sys.stderr)
        llm = selected.backend
    advice = advise_source(phot, 0, _graph(settings), llm, analyse(phot))
    if args.plot:
        advice.plot = str(plot_advice(advice, args.plot))
    for notice in advice.notices:
        print(f"notice: {notice}", file=sys.stderr)
    if args.json:
        _print_json(advice.to_dict())
    else:
        if advice.backend == "report":
            print(advice.narrative)
        else:
            from .sed.advisor import structured_report

            print(f"{advice.narrative}\n\n{structured_report(advice)}")
        if advice.plot:
            print(f"plot: {advice.plot}")
    return 0


def cmd_advise_catalog(args: argparse.Namespace) -> int:
    from .sed.catalog import advise_catalog

    settings = settings_from(args)
    llm = None
    if args.llm:
        from .errors import BackendError
        from .llm import get_backend

        llm = get_backend(args.backend or "openai", settings).backend
        if not llm.is_generative:
            raise BackendError("--llm needs a language model: --backend openai (vLLM, llama.cpp) or ollama")
        ok, why = llm.available()
        if not ok:
            raise BackendError(f"--llm: {why}")
    report = advise_catalog(args.file, args.out, scheduler=args.scheduler, workers=args.workers, z=args.z,
                            flux_unit=args.flux_unit, block_rows=args.block_rows, graph=_graph(settings),
                            progress=settings.progress, llm=llm, llm_limit=args.llm_limit)
    for problem in report.problems[:50]:
        print(f"skipped {problem}", file=sys.stderr)
    if len(report.problems) > 50:
        print(f"... and {len(report.problems) - 50} more skipped rows", file=sys.stderr)
    if args.json:
        _print_json({"sources": report.sources, "lrd": report.lrd, "unclassifiable": report.unclassifiable,
                     "seconds": report.seconds, "sources_per_s": report.rate,
                     "sources_per_s_after_start": report.sources / max(report.process_seconds, 1e-9),
                     "peak_memory_mb": report.peak_memory_mb, "workers": report.workers, "out": report.out,
                     "skipped_rows": len(report.problems), "narratives": report.narratives})
    else:
        print(report.summary())
    return 0


def cmd_eval_mcq(args: argparse.Namespace) -> int:
    from .evaluation.mcq import MODES, run_mcq
    from .errors import ConfigError

    settings = settings_from(args)
    if args.mode == "auto":
        from .llm import get_backend

        selected = get_backend(args.backend or settings.backend, settings)
        if selected.notice:
            print(selected.notice, file=sys.stderr)
        modes = ["rag"] if selected.backend.is_generative else ["retrieval"]
        if not selected.backend.is_generative:
            print("notice: no language model: scoring with the retrieval-only method (--mode retrieval)",
                  file=sys.stderr)
        run_mcq(args.suite, settings, modes, limit=args.limit, fmt=args.format, out=args.out,
                llm=selected.backend if selected.backend.is_generative else None)
        return 0
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ConfigError(f"unknown mode(s) {', '.join(bad)}; use {', '.join(MODES)} or auto")
    run_mcq(args.suite, settings, modes, backend=args.backend, limit=args.limit, fmt=args.format, out=args.out)
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from .evaluation.retrieval_eval import run_retrieval_eval

    run_retrieval_eval(args.qrels, settings_from(args), out=args.out)
    return 0


def cmd_eval_sed(args: argparse.Namespace) -> int:
    from .evaluation.sed_eval import run_sed_eval

    run_sed_eval(settings_from(args), n_synthetic=args.n, seed=args.seed, lrd_table=args.lrd_table, out=args.out)
    return 0


def cmd_eval_cost(args: argparse.Namespace) -> int:
    from .evaluation.cost import run_cost

    run_cost(settings_from(args), backend=args.backend, questions=args.questions, llm_fraction=args.llm_fraction,
             output_tokens=args.output_tokens, prefill_tps=args.prefill_tps, decode_tps=args.decode_tps,
             gpu_hour_usd=args.gpu_hour_usd, usd_per_mtok_in=args.usd_per_mtok_in,
             usd_per_mtok_out=args.usd_per_mtok_out, out=args.out)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .ui import serve

    serve(settings_from(args), args.host, args.port, args.auth)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    results = run_bench(settings_from(args), limit=args.limit, log=None if args.json else print,
                        scale=not args.no_scale, onnx=not args.no_onnx)
    if args.json:
        _print_json(results)
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except AstroRagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished batches are kept; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
