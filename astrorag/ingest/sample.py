"""The bundled sample corpus: 687 astro-ph abstracts from 2025 (see astrorag/data/PROVENANCE.txt).

Its chunks' vectors ship beside it (``sample_vectors.npz``: the packaged all-MiniLM-L6-v2 through the fp32 ONNX
graph, which equals torch to 1e-7, stored as float16): the first ``ask`` on a fresh install builds the sample
index without embedding 1,197 chunks, which takes a minute or more on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..index.embed import PACKAGED_MODEL_IDENTITY, Embedder, resolve_model_path
from ..index.store import Index
from ..settings import IngestSettings, Settings
from .pipeline import IngestReport, ingest_documents
from .records import read_files


def sample_corpus_path() -> Path:
    return Path(str(resources.files("astrorag") / "data" / "sample_abstracts.jsonl"))


def sample_vectors_path() -> Path:
    return Path(str(resources.files("astrorag") / "data" / "sample_vectors.npz"))


def text_key(text: str) -> str:
    """What a shipped vector is filed under: a hash of the exact text that was embedded."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ShippedVectors(Embedder):
    """The shipped vectors of the sample's chunks, and a real embedder (made on first need) for any other text.

    Examples
    --------
    >>> shipped = ShippedVectors(lambda: None)
    >>> len(shipped.vectors) > 1000
    True
    """

    def __init__(self, fallback):
        data = np.load(sample_vectors_path())
        self.vectors = dict(zip((str(k) for k in data["keys"]), data["vectors"]))
        self.identity, self.dim = str(data["identity"]), int(data["vectors"].shape[1])
        self._fallback, self._embedder = fallback, None
        self.misses = 0

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            vector = self.vectors.get(text_key(text))
            if vector is None:
                missing.append(i)
            else:
                out[i] = vector
        if missing:  # e.g. a chunker change since the vectors were written: embed those for real
            self._embedder = self._embedder or self._fallback()
            out[missing] = self._embedder.encode([texts[i] for i in missing])
            self.misses += len(missing)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)  # float16 storage: renormalise


def write_sample_vectors(settings: Settings | None = None, path: Path | None = None) -> int:
    """Embed the sample's chunks with the fp32 ONNX graph and write them (run when the corpus, chunker or
    default model changes; a test checks they still match). Returns the number of chunks."""
    import tempfile

    from ..index.onnx_embed import OnnxEmbedder
    from .chunking import chunk_document, embedding_text

    settings = settings or Settings()
    texts = [embedding_text(d.title, c) for d in read_files([sample_corpus_path()]).documents
             for c in chunk_document(d, settings.ingest.chunk_size, settings.ingest.chunk_overlap)]
    with tempfile.TemporaryDirectory() as tmp:
        embedder = OnnxEmbedder.build(settings.embedding.model, Path(tmp), "fp32")
        vectors = embedder.encode(texts)
    keys = np.array([text_key(t) for t in texts])  # hex: numpy's bytes strings drop trailing zero bytes
    np.savez_compressed(path or sample_vectors_path(), keys=keys, vectors=vectors.astype(np.float16),
                        identity=np.array(embedder.identity))
    return len(texts)


def _uses_shipped_vectors(settings: Settings) -> bool:
    """The shipped vectors stand for the packaged model in fp32 (ONNX fp32 or torch), at the default chunking."""
    chunking, default = settings.ingest, IngestSettings()
    return (settings.embedding.backend in ("auto", "onnx-fp32", "torch") and sample_vectors_path().is_file()
            and (chunking.chunk_size, chunking.chunk_overlap) == (default.chunk_size, default.chunk_overlap)
            and resolve_model_path(settings.embedding.model)[1] == PACKAGED_MODEL_IDENTITY)


def ensure_sample_index(settings: Settings, embedder: Embedder | None = None) -> str:
    """Build the index from the sample corpus unless it is there. Processes asking at the same time take
    turns on a file lock, so none answers from a half-built index; returns a notice when one waited."""
    import time

    from ..locks import locked

    settings.storage.index_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with locked(settings.storage.index_dir / f".{settings.storage.index_name}.build.lock"):
        waited = time.perf_counter() - start
        if not Index.exists(settings):
            build_sample_index(settings, embedder)
    return (f"notice: waited {waited:.0f} s for another process to finish building the sample index"
            if waited >= 1 else "")


def build_sample_index(settings: Settings, embedder: Embedder | None = None, quiet: bool = False) -> IngestReport:
    """Ingest the sample corpus into the index named in ``settings`` (idempotent).

    With the default model and chunking, the chunks' vectors come from the shipped file, and an ``auto`` backend
    becomes ``onnx-fp32`` for this index (the backend those vectors are exact for; questions use it too).
    """
    from ..index.embedders import get_embedder

    if not quiet:
        print(f"Building index {settings.storage.index_name!r} in {settings.storage.index_dir} from the bundled "
              f"sample corpus (687 astro-ph abstracts, 2025); this happens once.", file=sys.stderr)
    if embedder is None and _uses_shipped_vectors(settings):
        if settings.embedding.backend == "auto":
            settings = settings.replace(embedding_backend="onnx-fp32")
        embedder = ShippedVectors(lambda: get_embedder(settings))
    embedder = embedder or get_embedder(settings)
    index = Index.open(settings, create=True)
    try:
        result = read_files([sample_corpus_path()])
        report = ingest_documents(index, result.documents, embedder, settings, progress=not quiet)
    finally:
        index.close()
    from ..index.embedders import prepare_query_embedder

    note = prepare_query_embedder(settings)
    if note and not quiet:
        print(note, file=sys.stderr)
    if isinstance(embedder, ShippedVectors) and not quiet:
        print(f"{report.chunks_written} chunks indexed in {report.seconds:.1f} s: shipped vectors for "
              f"{report.chunks_written - embedder.misses}, embedded {embedder.misses}", file=sys.stderr)
    return report
