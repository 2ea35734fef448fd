"""Shared fixtures: tmp_path homes, one real embedder, a small real index, a fake Ollama server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests never reach a real Ollama by accident: point the default at a closed loopback port.
# The shared fixtures embed with torch, and CLI subprocesses must agree with them; the default backend (auto ->
# ONNX int8 without torch) is tested on its own in test_torch_free.py.
os.environ.setdefault("ASTRORAG_EMBEDDING_BACKEND", "torch")
os.environ["OLLAMA_HOST"] = os.environ.get("ASTRORAG_TEST_OLLAMA_HOST", "http://127.0.0.1:9")
os.environ["ASTRORAG_OPENAI_URL"] = "http://127.0.0.1:9/v1"  # and never an OpenAI-compatible one
# Kept fits (the fit cache) go to a folder of this test session, never the user's ~/.cache.
import tempfile

os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="astrorag-test-cache-")

from astrorag.index.embedders import get_embedder
from astrorag.index.store import Index
from astrorag.ingest.pipeline import ingest_documents
from astrorag.ingest.records import read_files
from astrorag.settings import Settings

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser):
    parser.addoption("--live", action="store_true", help="run tests that talk to real external services")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live test: needs a real service; run with --live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(index_dir=tmp_path / "indexes", progress=False, ingest_batch_size=8,
                    ollama_host="http://127.0.0.1:9", embedding_backend="torch")


@pytest.fixture(scope="session")
def embedder():
    return get_embedder(Settings(embedding_backend="torch"))


@pytest.fixture(scope="session")
def small_settings(tmp_path_factory) -> Settings:
    """A real index (Chroma + BM25, real embeddings) over 40 real abstracts, built once per session."""
    # torch here so that the shared index matches the `embedder` fixture; the default (auto -> ONNX int8, no
    # torch) has its own tests in test_torch_free.py.
    settings = Settings(index_dir=tmp_path_factory.mktemp("idx"), index_name="small", progress=False,
                        ollama_host="http://127.0.0.1:9", embedding_backend="torch")
    index = Index.open(settings, create=True)
    ingest_documents(index, read_files([DATA / "abstracts_small.jsonl"]).documents, get_embedder(settings), settings)
    index.close()
    return settings


@pytest.fixture(scope="session")
def gguf():
    """The Gemma 3 270M GGUF (a base model: it echoes its prompt), assembled from the package index."""
    from real_models import gguf_path

    return gguf_path()


@pytest.fixture(scope="session")
def local_llm(gguf):
    """The GGUF loaded in this process, once per session: a small context and short replies keep it quick."""
    from astrorag.llm.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend(gguf, num_ctx=4096, max_tokens=48, temperature=0.0)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_server(gguf):
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1 at its default context (2,048 tokens)."""
    from real_models import LlamaServer

    server = LlamaServer(gguf)
    yield server
    server.stop()
