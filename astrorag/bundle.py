"""Reproducibility bundles: everything needed to re-run an answer and see whether it changed.

``astrorag ask ... --save DIR`` writes ``DIR/bundle.json`` (question, answer, every evidence passage with its
ids, the rules used, the exact prompt sent, the settings, the index fingerprint and corpus hash, the model's
name and digest, astrorag's version) and ``DIR/answer.md`` (the same for people). ``astrorag replay DIR``
asks the same question against the current index and model with the bundle's settings, and reports what
differs. Attach the bundle to a paper's methods section; a referee can replay it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError
from .files import write_atomically
from .settings import LEAVES, Settings

BUNDLE_VERSION = 1
#: Settings that say where things run, not what the answer is: not written into a bundle at all.
LOCAL_SETTINGS = {"index_dir", "cache_dir", "ollama_host", "ollama_hosts", "openai_url", "chroma_url", "progress", "ads_url",
                  "arxiv_url", "llm_timeout_s", "llm_concurrency", "llm_threads", "gguf_model",
                  "openai_json_mode"}


def corpus_hash(index) -> str:
    """SHA-256 over the sorted (document id, content hash) pairs of an index: equal corpora, equal hashes."""
    pairs = sorted(index.ledger.content_hashes().items())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def model_identity(assistant) -> dict[str, Any]:
    """The writer's name, model and, where the server says, the model digest."""
    writer = assistant.writer
    identity = {"backend": writer.name, "model": getattr(writer, "model", None), "digest": None}
    llm = assistant.llm
    if llm is not None and hasattr(llm, "model_digest"):
        try:
            identity["digest"] = llm.model_digest()
        except Exception as exc:  # a server that went away after answering: record why there is no digest
            identity["digest_error"] = f"{type(exc).__name__}: {exc}"
    return identity


def make_bundle(assistant, answer, params=None, prepared=None) -> dict[str, Any]:
    """The bundle of one answered question (see the module docstring); ``prepared`` is the prompt the
    writer read (:attr:`~astrorag.assistant.AnswerStream.prepared`)."""
    settings = assistant.settings
    index = assistant.index
    evidence = [e.to_dict() for e in answer.evidence]
    return {
        "bundle_version": BUNDLE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "astrorag_version": __version__,
        "python": platform.python_version(),
        "question": answer.question,
        "answer": answer.text,
        "no_evidence": answer.no_evidence,
        "citations": [e.key for e in answer.citations],
        "evidence": evidence,
        "rules": [e.rule_id for e in answer.evidence if e.kind == "rule"],
        "prompt": prepared.messages if prepared is not None else [],
        "params": None if params is None else dataclasses.asdict(params),
        # what shaped the answer: the fit group does not, and the machine's own hosts and paths stay here
        "settings": {k: v for k, v in settings.to_dict().items()
                     if k not in LOCAL_SETTINGS and LEAVES[k].path[0] != "fit"},
        "settings_fingerprint": settings.fingerprint(),
        "index": {"name": settings.storage.index_name, "fingerprint": index.spec["fingerprint"],
                  "documents": index.count_documents(), "chunks": index.count_chunks(),
                  "corpus_hash": corpus_hash(index)},
        "model": model_identity(assistant),
        "tokens": answer.tokens,
        "degenerate": answer.degenerate,
        "degenerate_reason": answer.degenerate_reason,
        "notices": list(answer.notices),
    }


BUNDLE_FILES = ("bundle.json", "answer.md")


def check_save_target(directory: str | Path, force: bool = False) -> None:
    """Refuse, before any work, a ``--save`` folder that would overwrite something.

    Raises
    ------
    InputError
        When the path is a file, or a folder that already holds files (unless ``force``: then only
        bundle.json and answer.md are replaced, never through a link).
    """
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--save {directory} is a file; give a folder for the bundle (it is created if missing)")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise InputError(f"--save {directory} is not empty; choose a new folder, or pass --force to replace its "
                         f"{' and '.join(BUNDLE_FILES)}")


def save_bundle(directory: str | Path, bundle: dict[str, Any], force: bool = False) -> Path:
    """Write ``bundle.json`` and ``answer.md`` into ``directory``; return the folder (see
    :func:`check_save_target` for what is refused)."""
    check_save_target(directory, force)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "bundle.json", json.dumps(bundle, indent=2, ensure_ascii=False, default=str) + "\n")
    lines = [f"# {bundle['question']}", "", bundle["answer"], "", "## Evidence", ""]
    for e in bundle["evidence"]:
        ident = e.get("arxiv_id") or e.get("bibcode") or e.get("rule_id") or e.get("doc_id") or ""
        lines.append(f"- [{e.get('key')}] {e.get('title') or ''} ({ident}; chunk {e.get('chunk_id') or '-'})")
    model = bundle["model"]
    lines += ["", "## Provenance", "",
              f"- astrorag {bundle['astrorag_version']}, Python {bundle['python']}, {bundle['created']}",
              f"- writer: {model['backend']} {model.get('model') or ''} digest {model.get('digest') or 'n/a'}",
              f"- index {bundle['index']['name']}: fingerprint {bundle['index']['fingerprint']}, "
              f"{bundle['index']['documents']} documents, corpus hash {bundle['index']['corpus_hash'][:16]}...",
              f"- settings fingerprint {bundle['settings_fingerprint']}",
              "", f"Re-run with `astrorag replay {folder}`."]
    write_atomically(folder / "answer.md", "\n".join(lines) + "\n")
    return folder


def load_bundle(directory: str | Path) -> dict[str, Any]:
    """Read and validate a bundle (see :class:`BundleFile`); one-line errors that say what is wrong."""
    from pydantic import ValidationError

    from .bundle_schema import MAX_BUNDLE_BYTES, BundleFile

    path = Path(directory) / "bundle.json"
    if not path.is_file():
        raise InputError(f"{directory} holds no bundle.json: write one with `astrorag ask ... --save {directory}`")
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise InputError(f"{path} is {path.stat().st_size / 1e6:.0f} MB; a bundle is at most "
                         f"{MAX_BUNDLE_BYTES / 1e6:.0f} MB (an answer with its evidence is a few hundred kB)")
    try:
        bundle = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"{path} is not valid JSON{where}: the bundle is damaged") from exc
    if not isinstance(bundle, dict):
        raise InputError(f"{path} holds a JSON {type(bundle).__name__}, not a bundle (a JSON object)")
    version = bundle.get("bundle_version")
    if version not in (BUNDLE_VERSION, str(BUNDLE_VERSION)):
        raise InputError(f"{path} is bundle version {version!r}; this astrorag reads version {BUNDLE_VERSION}")
    try:
        BundleFile.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the bundle"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise InputError(f"{path} is not a valid astrorag bundle: {where}: {first['msg']}{more}") from None
    return bundle


@dataclass
class ReplayReport:
    """What changed between a bundle and its replay."""

    same_answer: bool
    same_evidence: bool
    same_prompt: bool
    same_corpus: bool
    same_index: bool
    same_model: bool
    answer_diff: str = ""
    evidence_added: list[str] = field(default_factory=list)
    evidence_removed: list[str] = field(default_factory=list)
    replay: dict[str, Any] = field(default_factory=dict)
    #: what the bundle asked for that was not taken from it (hosts, paths, keys, bad names)
    ignored: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.same_answer and self.same_evidence and self.same_prompt

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["identical"] = self.identical
        return data


def _evidence_ids(bundle: dict[str, Any]) -> list[str]:
    return [e.get("chunk_id") or e.get("rule_id") or e.get("doc_id") or "" for e in bundle["evidence"]]


def replay(settings: Settings, directory: str | Path, backend: str | None = None) -> ReplayReport:
    """Re-run a bundle's question on this machine's index and model; compare.

    A bundle is data from someone else: only what shapes the answer (k, retrieval mode, filters, rules,
    model names, context and reply sizes) is taken from it. Hosts, URLs, paths and keys come from this
    machine's configuration alone; what was ignored is listed in the report.
    """
    from .assistant import Assistant
    from .bundle_schema import REPLAYED_SETTINGS, plain_index_name
    from .index.types import Filters, QueryParams
    from .llm import backend_names

    bundle = load_bundle(directory)
    stored = dict(bundle["settings"])
    ignored: list[str] = []
    taken: dict[str, Any] = {}
    local = settings.to_dict()
    for key, value in stored.items():
        if key not in REPLAYED_SETTINGS:
            if key in local and str(local[key]) != str(value):
                ignored.append(f"{key} (the bundle's {str(value)[:60]!r}; this machine's is used)")
            continue
        if key == "index_name" and not plain_index_name(value):
            ignored.append(f"index_name {str(value)[:60]!r} (not a plain index name under this machine's "
                           f"index folder)")
            continue
        taken[key] = value
    run_settings = settings.replace(**taken)
    # Every per-call option the answer was asked with (k, mode, filters, rules, rewrite, rescore).
    raw = dict(bundle.get("params") or {})
    filters = raw.pop("filters", None)
    params = QueryParams(**{k: v for k, v in raw.items() if k in QueryParams.__dataclass_fields__},
                         filters=Filters(**filters) if isinstance(filters, dict) else None)
    writer = backend or bundle["model"]["backend"]
    if writer not in backend_names():
        ignored.append(f"backend {writer[:40]!r} (not one of {', '.join(backend_names())}; "
                       f"{settings.llm.backend} used)")
        writer = settings.llm.backend
    assistant = Assistant(run_settings, backend=writer)
    try:
        response = assistant.stream(bundle["question"], params)
        again = make_bundle(assistant, response.finish(), params, response.prepared)
    finally:
        assistant.close()
    diff = "\n".join(difflib.unified_diff(bundle["answer"].splitlines(), again["answer"].splitlines(),
                                          "bundle", "replay", lineterm=""))
    before, after = _evidence_ids(bundle), _evidence_ids(again)
    model_keys = ("backend", "model", "digest")
    return ReplayReport(
        same_answer=bundle["answer"] == again["answer"], same_evidence=before == after,
        same_prompt=bundle["prompt"] == again["prompt"],
        same_corpus=bundle["index"]["corpus_hash"] == again["index"]["corpus_hash"],
        same_index=bundle["index"]["fingerprint"] == again["index"]["fingerprint"],
        same_model=all(bundle["model"].get(k) == again["model"].get(k) for k in model_keys),
        answer_diff=diff, evidence_added=[i for i in after if i not in before],
        evidence_removed=[i for i in before if i not in after], replay=again, ignored=ignored)
