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
