import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import DATA

from astrorag.errors import IndexMismatchError, IndexNotFoundError
from astrorag.index.store import Index
from astrorag.ingest.chunking import chunk_document
from astrorag.ingest.pipeline import ingest_documents
from astrorag.ingest.rebuild import rebuild_index
from astrorag.ingest.records import read_files


def _docs():
    return read_files([DATA / "abstracts_small.jsonl"]).documents


def test_reingest_adds_nothing_and_changed_doc_replaces_chunks(settings, embedder):
    docs = _docs()
    index = Index.open(settings, create=True)
    first = ingest_documents(index, docs, embedder, settings)
    n_chunks = index.count_chunks()
    assert first.added == 40 and n_chunks == first.chunks_written > 40
    assert index.collection.count() == n_chunks

    again = ingest_documents(index, docs, embedder, settings)
    assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 40, 0)
    assert index.count_chunks() == index.collection.count() == n_chunks

    changed = dataclasses.replace(docs[0], abstract="A completely rewritten abstract about quasars.")
    third = ingest_documents(index, [changed], embedder, settings)
    assert third.updated == 1 and third.chunks_written == 1
    assert index.count_chunks() == index.collection.count() == n_chunks - len(chunk_document(docs[0])) + 1
    stored = index.chunks(index.chunk_ids())
    assert sum(c.doc_id == docs[0].doc_id for c in stored.values()) == 1
    index.close()


def test_fingerprint_mismatch_is_refused_with_fix(settings, embedder):
    index = Index.open(settings, create=True)
    ingest_documents(index, _docs()[:3], embedder, settings)
    index.close()
    other = settings.replace(chunk_size=128)
    with pytest.raises(IndexMismatchError) as info:
        Index.open(other, create=True)
    message = str(info.value)
    assert "chunks 256/32" in message and "chunks 128/32" in message
    assert "astrorag index rebuild --index default" in message
    # ... and the fix it names works: rebuild re-chunks from the stored records.
    report = rebuild_index(other)
    assert report.added == 3
    rebuilt = Index.open(other)
    assert rebuilt.count_documents() == 3 and rebuilt.spec["chunk_size"] == 128
    rebuilt.close()


def test_missing_index_says_how_to_build(settings):
    with pytest.raises(IndexNotFoundError, match="astrorag ingest files"):
        Index.open(settings)


def _expected_chunk_ids():
    return sorted(c.chunk_id for d in _docs() for c in chunk_document(d))


def test_killed_ingest_resumes_exactly(tmp_path):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path), ASTRORAG_INGEST_BATCH_SIZE="2",
               ASTRORAG_PROGRESS="false")
    cmd = [sys.executable, "-m", "astrorag", "ingest", "files", str(DATA / "abstracts_small.jsonl"),
           "--index", "resume"]
    ledger = tmp_path / "resume" / "ledger.sqlite"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ledger.exists():
            try:
                with sqlite3.connect(ledger, timeout=1) as db:
                    stored = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
            if stored >= 6:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 6 <= stored < 40, f"the ingest was not interrupted midway (stored={stored})"

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "0 updated" in done.stdout and "unchanged" in done.stdout
    info = json.loads(subprocess.run([sys.executable, "-m", "astrorag", "index", "info", "--json",
                                      "--index", "resume"], env=env, capture_output=True, text=True).stdout)
    expected = _expected_chunk_ids()
    assert info["documents"] == 40
    assert info["chunks"] == info["vectors"] == len(expected)
    from astrorag.settings import Settings
    index = Index.open(Settings(index_dir=tmp_path, index_name="resume"))
    assert index.chunk_ids() == expected
    assert sorted(index.collection.get(include=[])["ids"]) == expected
    index.close()


def test_cli_ingest_reports_bad_lines_and_keeps_good(tmp_path):
    bad = tmp_path / "some.jsonl"
    lines = (DATA / "abstracts_small.jsonl").read_text().splitlines()[:3]
    bad.write_text("\n".join([lines[0], "{broken", lines[1], lines[2]]) + "\n")
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "ix"))
    run = subprocess.run([sys.executable, "-m", "astrorag", "ingest", "files", str(bad), "--quiet"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"skipped {bad}:2: not valid JSON" in run.stderr
    assert "3 added" in run.stdout and "1 record(s) skipped" in run.stdout
    assert "Traceback" not in run.stderr



def test_an_ads_ingest_without_a_token_creates_no_index(tmp_path, monkeypatch):
    """Without a token, `ingest ads` stops before it creates the (default) index: otherwise an empty index stays
    behind and the next `ask` answers from it instead of building the sample corpus."""
    from astrorag.errors import SourceError
    from astrorag.index.store import Index
    from astrorag.settings import Settings
    from astrorag.workflows import ingest_remote

    for var in ("ADS_API_TOKEN", "ADS_DEV_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = Settings(index_dir=tmp_path / "indexes", progress=False)
    with pytest.raises(SourceError, match="no NASA ADS API token"):
        ingest_remote(settings, "ads", "little red dots", 5)
    assert not Index.exists(settings)
