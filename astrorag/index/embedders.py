"""The embedder registry: a backend name in Settings (torch, onnx-int8, onnx-fp32) to a cached embedder."""

from __future__ import annotations

import os
from typing import Callable

from ..errors import ConfigError
from ..settings import Settings
from .embed import Embedder, SentenceTransformerEmbedder


def _onnx(quant: str) -> Callable[[Settings], Embedder]:
    def make(s: Settings) -> Embedder:
        from .onnx_embed import OnnxEmbedder  # onnxruntime only loads when an ONNX backend is chosen

        return OnnxEmbedder.build(s.embedding_model, s.index_dir, quant)

    return make


EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {
    "torch": lambda s: SentenceTransformerEmbedder(s.embedding_model, s.embedding_device, s.embedding_batch_size),
    "onnx-int8": _onnx("int8"),
    "onnx-fp32": _onnx("fp32"),
}

_CACHE: dict[tuple[str, str, str, int], Embedder] = {}


def get_embedder(settings: Settings, backend: str | None = None) -> Embedder:
    """Return the embedder for these settings (cached per model, device and backend).

    Raises
    ------
    ConfigError
        For an unknown backend name; the message lists the valid ones.
    """
    backend = backend or settings.embedding_backend
    if backend not in EMBEDDERS:
        raise ConfigError(f"unknown embedding backend {backend!r}; valid names: {', '.join(sorted(EMBEDDERS))}")
    key = (backend, settings.embedding_model, settings.embedding_device, settings.embedding_batch_size,
           str(settings.index_dir) if backend.startswith("onnx") else "")
    if key not in _CACHE:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        _CACHE[key] = EMBEDDERS[backend](settings)
    return _CACHE[key]


#: An fp32 export stands in for torch on queries only if it reproduces torch this closely on the probe set.
QUERY_MIN_COSINE = 0.9999


def get_query_embedder(settings: Settings) -> Embedder:
    """The embedder for questions.

    For an index embedded with torch, a cached fp32 ONNX export of the same model gives the same vectors
    (checked at export to a cosine >= 0.9999) without importing torch, which is most of a cold ``ask``.
    Ingest with torch leaves that export behind (:func:`prepare_query_embedder`); without it, the index's
    own embedder is used.
    """
    if settings.embedding_backend == "torch" and settings.embedding_device in ("auto", "cpu"):
        from .onnx_embed import OnnxEmbedder

        key = ("query", settings.embedding_model, str(settings.index_dir))
        if key not in _CACHE:
            found = OnnxEmbedder.cached(settings.embedding_model, settings.index_dir, "fp32", fast_load=True)
            if found is not None and (found.min_cosine or 0.0) >= QUERY_MIN_COSINE:
                _CACHE[key] = found
        if key in _CACHE:
            return _CACHE[key]
    return get_embedder(settings)


def prepare_query_embedder(settings: Settings) -> str:
    """After a torch ingest (torch is loaded anyway), export the fp32 query encoder once; "" or a note."""
    if settings.embedding_backend != "torch":
        return ""
    from .onnx_embed import OnnxEmbedder

    try:
        OnnxEmbedder.build(settings.embedding_model, settings.index_dir, "fp32")
    except ConfigError as exc:  # an architecture the exporter cannot take: queries keep using torch
        return f"note: no fast query encoder ({exc}); questions will load torch"
    return ""
