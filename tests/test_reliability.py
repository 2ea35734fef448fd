"""Damaged indexes, bad input and concurrency: each case reproduced first, then the behaviour asserted."""

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import DATA

from astrorag.assistant import Assistant
from astrorag.errors import IndexDamagedError, InputError
from astrorag.index.store import Index
from astrorag.index.types import QueryParams
from astrorag.ingest.pipeline import ingest_documents
from astrorag.ingest.records import read_files
from astrorag.ingest.repair import repair_index

LRD_TABLE = DATA.parent.parent / "astrorag" / "data" / "kokorev2024_lrd_dev.csv"
QUESTION = "What powers little red dots?"


@pytest.fixture
def copy_of_small(small_settings, tmp_path):
    """A private copy of the session's small index, free to damage."""
    shutil.copytree(small_settings.index_path, tmp_path / "idx" / "small")
    return small_settings.replace(index_dir=tmp_path / "idx")


def _cli(settings, *args):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(settings.storage.index_dir),
               ASTRORAG_INDEX_NAME=settings.storage.index_name, ASTRORAG_PROGRESS="false")
    return subprocess.run([sys.executable, "-m", "astrorag", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _vector_count(settings) -> int:
    import chromadb

    client = chromadb.PersistentClient(str(settings.index_path / "chroma"),
                                       settings=chromadb.config.Settings(anonymized_telemetry=False))
    return client.get_collection("chunks").count()


def test_zero_byte_ledger_is_named_rebuild_refuses_and_repair_recovers(copy_of_small):
    s = copy_of_small
    ledger = s.index_path / "ledger.sqlite"
    vectors_before = _vector_count(s)
    os.truncate(ledger, 0)
    asked = _cli(s, "ask", QUESTION, "--backend", "extractive")
    assert asked.returncode != 0 and "Traceback" not in asked.stderr
    line = asked.stderr.strip().splitlines()[-1]
    assert "ledger.sqlite" in line and "index repair" in line
    rebuilt = _cli(s, "index", "rebuild")
    assert rebuilt.returncode != 0 and "Traceback" not in rebuilt.stderr and "index repair" in rebuilt.stderr
    assert _vector_count(s) == vectors_before                      # rebuild refused; nothing destroyed
    repaired = _cli(s, "index", "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "recovered" in repaired.stdout and list(s.index_path.glob("ledger.sqlite.damaged-*"))
    assert _cli(s, "index", "check").returncode == 0
    after = _cli(s, "ask", QUESTION, "--backend", "extractive", "--json")
    assert after.returncode == 0, after.stderr
    cited = {c["doc_id"] for c in json.loads(after.stdout)["citations"]}
    assert "2505.06965" in cited or "2506.04350" in cited          # the same LRD papers answer as before


def test_truncated_ledger_is_named_and_repaired(copy_of_small):
    from astrorag.ingest.rebuild import rebuild_index

    s = copy_of_small
    ledger = s.index_path / "ledger.sqlite"
    os.truncate(ledger, ledger.stat().st_size // 2)
    with pytest.raises(IndexDamagedError, match=r"ledger\.sqlite.*truncated|ledger\.sqlite.*SQLite cannot read"):
        Index.open(s)
    with pytest.raises(IndexDamagedError, match="index repair"):
        rebuild_index(s)
    report = repair_index(s)
    assert report.recovered_documents == 40
    index = Index.open(s)
    assert index.check() == [] and index.count_documents() == 40
    index.close()


def test_lost_vectors_are_noticed_and_re_embedded(copy_of_small, embedder):
    s = copy_of_small
    shutil.rmtree(s.index_path / "chroma")
    assistant = Assistant(s, backend="extractive", embedder=embedder)
    cached = assistant.ask(QUESTION, QueryParams(mode="dense"))    # the query cache still answers, and says why
    assistant.close()
    assert [e for e in cached.evidence if e.kind == "chunk"] and any("chroma/) is missing" in n for n in cached.notices)
    shutil.rmtree(s.index_path / "dense")
    assistant = Assistant(s, backend="extractive", embedder=embedder)
    answer = assistant.ask(QUESTION, QueryParams(mode="dense"))
    assistant.close()
    assert not [e for e in answer.evidence if e.kind == "chunk"]
    assert any("vector store holds 0 of" in n for n in answer.notices)
    report = repair_index(s)
    assert report.reembedded_chunks > 40
    index = Index.open(s)
    assert index.check() == [] and index.vectors.count() == index.count_chunks()
    index.close()


@pytest.mark.parametrize("damage", ["garbage ids", "missing arrays"])
def test_damaged_keyword_index_is_rebuilt_with_a_notice(copy_of_small, embedder, damage):
    s = copy_of_small
    folder = s.index_path / "bm25"
    if damage == "garbage ids":
        (folder / "ids.json").write_text("{not json")
    else:
        for f in folder.iterdir():
            if f.name != "ids.json":
                f.unlink()
    assistant = Assistant(s, backend="extractive", embedder=embedder)
    answer = assistant.ask(QUESTION, QueryParams(mode="bm25"))
    assistant.close()
    assert answer.evidence and any("keyword index" in n and "rebuilt" in n for n in answer.notices)


def test_damaged_manifest_is_a_message(copy_of_small):
    (copy_of_small.index_path / "manifest.json").write_text("{")
    asked = _cli(copy_of_small, "ask", QUESTION, "--backend", "extractive")
    assert asked.returncode != 0 and "Traceback" not in asked.stderr and "manifest" in asked.stderr


def test_index_killed_before_its_first_batch_answers_empty(settings, embedder):
    Index.open(settings, create=True).close()               # manifest and ledger, no vectors, no bm25 folder
    assistant = Assistant(settings, backend="extractive", embedder=embedder)
    assert all(e.kind == "rule" for e in assistant.retrieve(QUESTION))  # no passages, and no crash
    assistant.close()


def test_keyword_rebuilds_are_safe_across_writers_and_readers(copy_of_small):
    errors: list[BaseException] = []

    def run(job):
        index = Index.open(copy_of_small)
        try:
            for _ in range(6):
                job(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            index.close()

    threads = [threading.Thread(target=run, args=(lambda i: i.rebuild_bm25(),)) for _ in range(2)]
    threads.append(threading.Thread(target=run, args=(lambda i: i.bm25_search("little red dots", 5),)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert not list(copy_of_small.index_path.glob("bm25.tmp-*")) and not list(copy_of_small.index_path.glob("bm25.old-*"))


def test_an_ingest_counts_only_what_it_wrote(settings, embedder, monkeypatch):
    docs = read_files([DATA / "abstracts_small.jsonl"]).documents[:12]
    index = Index.open(settings, create=True)
    ingest_documents(index, docs, embedder, settings)
    # A second run whose first look at the ledger predates the other writer's commit:
    monkeypatch.setattr(index.ledger, "content_hashes", dict)
    again = ingest_documents(index, docs, embedder, settings)
    index.close()
    assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 12, 0)


def test_vectors_are_stored_in_batches_the_client_accepts(settings, embedder):
    from astrorag.index.types import Document

    doc = Document.create(title="A long record", abstract=" ".join(f"Sentence {i} about dust." for i in range(900)),
                          arxiv_id="2401.09981")
    index = Index.open(settings, create=True)
    _ = index.vectors.collection  # open the client
    index.vectors.client.get_max_batch_size = lambda: 7        # a small server limit, as 5,461 is for chromadb
    report = ingest_documents(index, [doc], embedder, settings.replace(chunk_size=64, chunk_overlap=8))
    assert report.chunks_written > 7 and index.vectors.count() == index.count_chunks() == report.chunks_written
    index.close()


def test_unphysical_redshifts_are_refused(tmp_path):
    for z in ("-1", "100"):
        run = subprocess.run([sys.executable, "-m", "astrorag", "advise", str(LRD_TABLE), "--z", z],
                             capture_output=True, text=True, timeout=120, env=dict(os.environ,
                                                                                 ASTRORAG_INDEX_DIR=str(tmp_path)))
        assert run.returncode != 0 and "not physical" in run.stderr and "Traceback" not in run.stderr
    from astrorag.sed.photometry import read_photometry

    lines = LRD_TABLE.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("z_phot")] = "-1"
    path = tmp_path / "z.csv"
    path.write_text("\n".join([lines[0], ",".join(row), lines[2]]) + "\n")
    phot = read_photometry(path)
    assert len(phot) == 1 and phot.problems[0].line == 2 and "not physical" in phot.problems[0].reason


def test_deep_json_and_bad_utf8_do_not_stop_the_good_files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    good = tmp_path / "good.jsonl"
    good.write_bytes(b'{"id": "2401.09981", "title": "Caf\xe9 dots", "abstract": "Red compact sources."}\n')
    result = read_files([deep, good])
    assert [d.doc_id for d in result.documents] == ["2401.09981"]
    assert any("nested too deeply" in p.reason for p in result.problems)
    assert len(result.notes) == 1 and "1 invalid UTF-8" in result.notes[0]


def test_a_catalog_with_no_readable_row_fails(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,z,f444w_flux,f444w_fluxerr\na,6,x,0.1\nb,6,y,0.1\n")
    run = subprocess.run([sys.executable, "-m", "astrorag", "advise-catalog", str(path), "--out",
                          str(tmp_path / "o.csv"), "--workers", "1", "--quiet"], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path)))
    assert run.returncode != 0 and "no row of" in run.stderr and not (tmp_path / "o.csv").exists()


def test_thousands_of_unknown_bands_give_a_short_message():
    from astrorag.sed.photometry import build

    cols = {"id": np.array(["a"]), **{f"zz{i}_flux": np.array([1.0]) for i in range(9999)},
            "f444w_flux": np.array([1.0]), "f444w_fluxerr": np.array([0.1])}
    with pytest.raises(InputError) as err:
        build(cols, np.array([2]))
    assert len(str(err.value)) < 2000 and "9999 column(s)" in str(err.value) and "9994 more" in str(err.value)


def test_check_reports_a_sound_index_as_sound(copy_of_small):
    index = Index.open(copy_of_small)
    assert index.check() == []
    index.close()
    with pytest.raises(IndexDamagedError):
        os.truncate(copy_of_small.index_path / "ledger.sqlite", 0)
        Index.open(copy_of_small)


def test_a_criterion_with_no_usable_bands_is_not_evaluable():
    from astrorag.sed.analysis import analyse
    from astrorag.sed.filters import get_filter
    from astrorag.sed.photometry import Photometry

    phot = Photometry(np.array(["only-f090w"]), np.array([6.0]), [get_filter("f090w")], np.array([[1.0]]),
                      np.array([[0.1]]), np.zeros((1, 1), bool), np.array([2]))
    a = analyse(phot)
    assert all(np.isnan(c.passed[0]) for c in a.criteria) and np.isnan(a.lrd_flag[0])


def test_a_hot_journal_left_by_a_killed_writer_is_not_damage(tmp_path):
    """A writer killed mid-transaction leaves ledger.sqlite-journal; the next open rolls it back."""
    from astrorag.index.ledger import Ledger, ledger_damage

    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    # A tiny page cache makes SQLite spill the transaction to the file, as a large ingest batch does.
    code = ("import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA cache_size=10');"
            "db.execute('BEGIN');"
            "db.executemany('INSERT INTO meta VALUES (?, ?)', [(str(i), 'x' * 4000) for i in range(200)]);"
            "os._exit(0)")  # dies holding the transaction: the journal stays
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    assert (tmp_path / "ledger.sqlite-journal").exists()
    assert ledger_damage(path) == ""
    ledger = Ledger(path)
    assert ledger.get_meta("5") is None and ledger.integrity() == "ok"
    ledger.close()


def test_overlapping_ingests_count_each_paper_once_between_them(settings, embedder):
    """Three ingests of the same papers at once: the counts come from the ledger's write transaction, so
    between them each paper is added once, however the runs interleave."""
    import threading

    docs = read_files([DATA / "abstracts_small.jsonl"]).documents[:24]
    Index.open(settings, create=True).close()
    reports, barrier = [], threading.Barrier(3)

    def run():
        index = Index.open(settings)
        # every run's first look predates the others' commits: the worst interleaving
        index.ledger.content_hashes = dict
        index.ledger.content_hashes_of = lambda ids: {}
        barrier.wait()
        reports.append(ingest_documents(index, docs, embedder, settings.replace(ingest_batch_size=4)))
        index.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.added for r in reports) == 24 and sum(r.updated for r in reports) == 0
    assert sum(r.unchanged for r in reports) == 48
    with Index.open(settings) as index:
        assert index.count_documents() == 24 and not index.check(full=True)


def test_an_ask_while_the_sample_index_is_first_built_waits_for_it(tmp_path):
    """Two first questions at once on a fresh machine: the second waits for the first's build instead of
    answering from a half-built index ("nothing relevant was retrieved")."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "indexes"), ASTRORAG_EMBEDDING_BACKEND="auto")
    command = [sys.executable, "-m", "astrorag", "ask", "What powers little red dots?", "--backend", "extractive",
               "--json"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    answers = [json.loads(out) for out, _ in outputs]
    assert all(a["evidence"] and not a["no_evidence"] for a in answers)
    assert sum("Building index" in err for _, err in outputs) == 1  # one built it, the other waited
