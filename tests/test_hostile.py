"""Inputs from other people, read as a hostile one would write them: bibliographic records, bundles."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from astrorag.bibtex import bibtex
from astrorag.index.types import Document

HOSTILE = [
    Document.create(title="Dust } , note = {injected}", authors=("Evil, Eve",), year=2025, arxiv_id="2501.00001",
                    doi="10.1/x}, note = {injected", categories=("astro-ph.GA}, note = {x",)),
    Document.create(title="Math $\\input{/etc/passwd}$ and $\\immediate\\write18{rm -rf ~}$", authors=("A, B",),
                    year=2025, arxiv_id="2501.00002"),
    Document.create(title="Unbalanced {{{ braces \\} and \\{", authors=("C}, D{",), year=2025,
                    arxiv_id="2501.00003"),
    Document.create(title="A bibcode that breaks the key", authors=("E, F",), year=2024,
                    bibcode="2024ApJ...968...38K}, x = {y", arxiv_id="2501.00004"),
    Document.create(title='Quotes " and @ signs @ARTICLE{fake, title={x}}', authors=("G, H",), year=2025,
                    arxiv_id="2501.00005"),
    Document.create(title="Good math $z\\sim 4\\text{--}7$ stays", authors=("Kokorev, Vasily",), year=2024,
                    bibcode="2024ApJ...968...38K", doi="10.3847/1538-4357/ad4265", arxiv_id="2401.09981"),
    Document.create(title="No authors in the record", year=2025, arxiv_id="2510.06408"),
    Document.create(title="Char codes $^^5cinput^^7b/etc/passwd^^7d$ and $a % comment$ \x1b[8mhidden\x1b[0m "
                          "\x00nul \x7fdel", authors=("I, J\x1b]0;owned\x07",), year=2025, arxiv_id="2501.00006"),
]
ALLOWED_FIELDS = {"author", "title", "journal", "year", "volume", "pages", "doi", "archiveprefix", "eprint",
                  "primaryclass", "adsurl", "url", "note", "ENTRYTYPE", "ID"}


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text.replace("\\textbraceleft{}", "").replace("\\textbraceright{}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_hostile_records_give_a_bib_that_parses_to_every_entry_and_no_injected_field():
    import bibtexparser

    text = bibtex(HOSTILE)
    entries = bibtexparser.loads(text).entries
    assert len(entries) == len(HOSTILE)
    for entry in entries:
        assert set(entry) <= ALLOWED_FIELDS, set(entry) - ALLOWED_FIELDS
        assert "injected" not in entry.get("note", "") and all(_balanced(v) for v in entry.values())
    by_eprint = {e.get("eprint"): e for e in entries}
    # no control sequence that reads files or runs commands survives as LaTeX
    assert not re.search(r"\\(input|write18|immediate)\b", text)
    assert "\\textbackslash{}input" in by_eprint["2501.00002"]["title"]
    assert "$z\\sim 4\\text{--}7$" in by_eprint["2401.09981"]["title"]  # ordinary math is kept
    assert "doi" not in by_eprint["2501.00001"] and "not well formed" in by_eprint["2501.00001"]["note"]
    assert "primaryclass" not in by_eprint["2501.00001"]
    assert by_eprint["2501.00004"]["ID"] == "2024arXiv250100004E" and "bibcode" in by_eprint["2501.00004"]["note"]
    no_authors = by_eprint["2510.06408"]
    assert no_authors["ID"] == "2025arXiv251006408X" and "names no authors" in no_authors["note"]
    assert not any(e["ID"].endswith(".") for e in entries)
    # TeX's ^^ notation, comments and control characters never reach the .bib as such.
    assert "^^" not in text and not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    codes = by_eprint["2501.00006"]["title"]
    assert "\\textasciicircum{}\\textasciicircum{}5cinput" in codes and "\\%" in codes


def test_hostile_bib_passes_a_real_bibtex_run(tmp_path):
    import shutil
    import subprocess

    if not shutil.which("bibtex"):
        pytest.skip("no bibtex binary (Debian texlive-binaries)")
    (tmp_path / "refs.bib").write_text(bibtex(HOSTILE))
    keys = re.findall(r"@\w+\{([^,]+),", bibtex(HOSTILE))
    (tmp_path / "paper.aux").write_text("".join(f"\\citation{{{k}}}\n" for k in keys) +
                                        "\\bibstyle{plain}\n\\bibdata{refs}\n")
    run = subprocess.run(["bibtex", "paper"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "error" not in run.stdout.lower()
    assert (tmp_path / "paper.bbl").read_text().count("\\bibitem") == len(HOSTILE)


# ---- bundles --------------------------------------------------------------------------------------------

QUESTION = "What powers little red dots?"


def _saved_bundle(settings, folder):
    """A real bundle: an extractive answer on the shared small index, saved as ask --save does."""
    from astrorag.assistant import Assistant
    from astrorag.bundle import make_bundle, save_bundle
    from astrorag.index.types import QueryParams

    assistant = Assistant(settings, backend="extractive")
    try:
        params = QueryParams(k=4)
        response = assistant.stream(QUESTION, params)
        save_bundle(folder, make_bundle(assistant, response.finish(), params, response.prepared))
    finally:
        assistant.close()
    return json.loads((folder / "bundle.json").read_text())


def test_a_received_bundle_replays_on_local_configuration_only(small_settings, tmp_path):
    from fake_ollama import FakeOllama
    from fake_openai import FakeOpenAI

    from astrorag.bundle import replay

    folder = tmp_path / "received"
    bundle = _saved_bundle(small_settings, folder)
    with FakeOpenAI() as openai_listener, FakeOllama(models=["astrosage"]) as ollama_listener:
        bundle["settings"].update(openai_url=openai_listener.url, ollama_host=ollama_listener.url,
                                  chroma_url=openai_listener.url, index_dir="/", gguf_model="/etc/passwd")
        for name in ("../../elsewhere", "/tmp/other-index"):
            bundle["settings"]["index_name"] = name
            (folder / "bundle.json").write_text(json.dumps(bundle))
            report = replay(small_settings, folder)
            assert report.identical and report.same_corpus  # answered from the local "small" index
            ignored = " ".join(report.ignored)
            for key in ("openai_url", "ollama_host", "chroma_url", "index_name", "gguf_model"):
                assert key in ignored
        assert openai_listener.requests == [] and ollama_listener.requests == []


MALFORMED = {
    "top level is a list": [],
    "top level is null": None,
    "top level is a string": "bundle",
    "settings is a list": {"settings": []},
    "params is a string": {"params": "k=4"},
    "unknown filter key": {"params": {"filters": {"year_min": 2020, "planet": "Mars"}}},
    "k is text": {"params": {"k": "abc"}},
    "k is fractional": {"params": {"k": 2.5}},
    "k is huge": {"params": {"k": 1e9}},
    "no question": {"question": None},
    "question is a number": {"question": 42},
    "question is 20 MB": {"question": "x" * 20_000_000},
    "evidence is a dict": {"evidence": {"1": "x"}},
    "answer is a list": {"answer": ["a"]},
    "no model": {"model": None},
    "no index": {"index": None},
    "prompt is text": {"prompt": "hello"},
    "version 2": {"bundle_version": 2},
    "settings k is text": {"settings": {"k": "abc"}},
    "settings k is 2.5": {"settings": {"k": 2.5}},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_bundle_is_one_line_that_says_what_is_wrong(small_settings, tmp_path, case):
    from astrorag.bundle import replay
    from astrorag.errors import AstroRagError

    folder = tmp_path / "b"
    good = _saved_bundle(small_settings, folder)
    change = MALFORMED[case]
    data = {**good, **change} if isinstance(change, dict) else change
    for part in ("params", "settings"):  # a change inside a part keeps the rest of it
        if isinstance(change, dict) and isinstance(change.get(part), dict) and change[part]:
            data[part] = {**good[part], **change[part]}
    (folder / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(AstroRagError) as err:
        replay(small_settings, folder)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    assert "bundle" in message or "k=" in message or "MB" in message


def test_the_cli_reports_a_malformed_bundle_without_a_traceback(small_settings, tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "bundle.json").write_text("[1, 2, 3]")
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small")
    run = subprocess.run([sys.executable, "-m", "astrorag", "replay", str(folder)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().startswith("error:") and "not a bundle" in run.stderr and run.stderr.count("\n") == 1


def test_save_refuses_to_overwrite_never_follows_links_and_checks_outputs_before_the_work(small_settings, tmp_path):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small")
    cli = [sys.executable, "-m", "astrorag", "ask", QUESTION, "--backend", "extractive"]

    def ask(*extra):
        return subprocess.run([*cli, *extra], env=env, capture_output=True, text=True, timeout=300)

    folder = tmp_path / "answer"
    assert ask("--save", str(folder)).returncode == 0
    first = (folder / "bundle.json").read_text()
    again = ask("--save", str(folder))
    assert again.returncode == 2 and "not empty" in again.stderr and "--force" in again.stderr
    assert again.stdout == ""  # refused before the answer was written out
    # a link inside the folder is replaced, never written through
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (folder / "answer.md").unlink()
    (folder / "answer.md").symlink_to(outside)
    (folder / "bundle.json").unlink()
    (folder / "bundle.json").symlink_to(tmp_path / "dangling")
    forced = ask("--save", str(folder), "--force")
    assert forced.returncode == 0, forced.stderr
    assert outside.read_text() == "keep me" and not (tmp_path / "dangling").exists()
    assert not (folder / "answer.md").is_symlink() and json.loads((folder / "bundle.json").read_text())["question"]
    assert json.loads(first)["question"] == QUESTION
    # outputs that cannot be written are refused before the work
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    onto_file = ask("--save", str(a_file))
    assert onto_file.returncode == 2 and "is a file" in onto_file.stderr and onto_file.stdout == ""
    missing = ask("--bibtex", str(tmp_path / "no" / "such" / "refs.bib"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and missing.stdout == ""


def test_records_with_no_word_to_index_are_kept_and_found_by_meaning_only(tmp_path):
    """A corpus whose text has no word of two letters (a title "3") gave bm25s an empty vocabulary and a
    traceback; it is ingested, the keyword half finds nothing, and the next real paper is found by keyword."""
    from astrorag.index.embedders import get_embedder
    from astrorag.index.retrieve import Retriever
    from astrorag.index.store import Index
    from astrorag.ingest.pipeline import ingest_documents
    from astrorag.settings import Settings

    settings = Settings(index_dir=tmp_path, index_name="odd", progress=False)
    embedder = get_embedder(settings)
    with Index.open(settings, create=True) as index:
        ingest_documents(index, [Document.create(title="3", abstract="")], embedder, settings)
        retriever = Retriever(index, embedder, settings)
        assert retriever.search("3", k=3, mode="bm25") == [] and len(retriever.search("3", k=3, mode="dense")) == 1
        ingest_documents(index, [Document.create(title="Little red dots", abstract="Broad Balmer lines.")],
                         embedder, settings)
        assert [h.chunk_id for h in retriever.search("Balmer", k=3, mode="bm25")]


def test_terminal_output_carries_no_control_sequence_from_a_record(tmp_path):
    """ingest + ask + export bibtex on records holding ESC, OSC and NUL: stdout and stderr are plain."""
    records = tmp_path / "hostile.jsonl"
    records.write_text(json.dumps({"id": "2501.00007", "title": "Little red dots \x1b[2J\x1b]0;owned\x07 glow",
                                   "abstract": "Little red dots are compact \x1b[8mhidden text\x1b[0m sources "
                                               "whose V-shaped SEDs \x00 puzzle us.", "year": 2025}) + "\n")
    env = {**os.environ, "ASTRORAG_INDEX_DIR": str(tmp_path / "idx"), "ASTRORAG_INDEX_NAME": "hostile"}
    for command in (["ingest", "files", str(records)], ["ask", "What are little red dots?", "--backend",
                                                        "extractive"],
                    ["export", "bibtex", "--ids", "2501.00007"]):
        run = subprocess.run([sys.executable, "-m", "astrorag", *command], capture_output=True, text=True,
                             timeout=600, env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        for stream in (run.stdout, run.stderr):
            assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", stream), (command, stream[:300])
