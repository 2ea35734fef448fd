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
    files.set_defaults(func=cmd_ingest_files)

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

    bench = sub.add_parser("bench", parents=[common], help="measure ingest, re-ingest, retrieval speed and quality")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--limit", type=int, help="use only the first N sample abstracts")
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
    try:
        report = ingest_documents(index, result.documents, get_embedder(settings), settings)
    finally:
        index.close()
    report.problems = result.problems
    print(f"index {settings.index_name!r}: {report.summary()}")
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
    from .types import Answer

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
                print(f"  [{ev.key}] {ev.label} {ev.title}\n       {ev.url or ''}")
        return 0
    finally:
        assistant.close()


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    results = run_bench(settings_from(args), limit=args.limit, log=None if args.json else print)
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
