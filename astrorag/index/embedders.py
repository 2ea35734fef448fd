"""The embedder registry: a backend name in Settings (auto, torch, onnx-int8, onnx-fp32) to a cached embedder.

``auto`` (the default) means: the backend an existing index was built with; for a new index, torch on a CUDA GPU,
else the ONNX int8 model when it passes its cosine check on this CPU, else ONNX fp32. None of the ONNX paths
needs torch.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from ..errors import ConfigError, ExportRefusedError
from ..settings import Settings
from .embed import Embedder, SentenceTransformerEmbedder


def _onnx(quant: str) -> Callable[[Settings], Embedder]:
    def make(s: Settings) -> Embedder:
        from .onnx_embed import OnnxEmbedder  # onnxruntime only loads when an ONNX backend is chosen

        return OnnxEmbedder.build(s.embedding.model, s.storage.index_dir, quant)

    return make


EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {
    "torch": lambda s: SentenceTransformerEmbedder(s.embedding.model, s.embedding.device, s.embedding.batch_size),
    "onnx-int8": _onnx("int8"),
    "onnx-fp32": _onnx("fp32"),
}

_CACHE: dict[tuple, Embedder] = {}
_AUTO: dict[tuple, str] = {}


def resolve_backend(settings: Settings) -> str:
    """The backend ``settings`` stand for, ``auto`` resolved (see the module docstring).

    >>> resolve_backend(Settings(embedding_backend="onnx-fp32"))
    'onnx-fp32'
    """
    if settings.embedding.backend != "auto":
        return settings.embedding.backend
    manifest = settings.index_path / "manifest.json"
    if manifest.is_file():
        try:
            stored = json.loads(manifest.read_text()).get("embedding_backend")
        except ValueError:  # a damaged manifest: Index.open says so and how to repair it
            stored = None
        if stored in EMBEDDERS:
            return stored
    key = (settings.embedding.model, str(settings.storage.index_dir), settings.embedding.device)
    if key not in _AUTO:
        _AUTO[key] = _pick_for_new_index(settings)
    return _AUTO[key]


def _pick_for_new_index(settings: Settings) -> str:
    from .onnx_embed import ensure_export, torch_available

    device = settings.embedding.device
    if device.startswith("cuda") or (device == "auto" and torch_available() and _cuda()):
        return "torch"
    try:
        ensure_export(settings.embedding.model, settings.storage.index_dir, "int8")  # get_embedder opens it after
        return "onnx-int8"
    except ExportRefusedError as exc:  # this CPU's int8 arithmetic is too coarse for the model
        print(f"note: {exc}; embedding with ONNX fp32 instead", file=sys.stderr)  # stdout may carry --json
        return "onnx-fp32"


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def get_embedder(settings: Settings, backend: str | None = None) -> Embedder:
    """Return the embedder for these settings (cached per model, device and backend).

    Raises
    ------
    ConfigError
        For an unknown backend name; the message lists the valid ones.
    """
    backend = backend or settings.embedding.backend
    if backend not in EMBEDDERS and backend != "auto":
        raise ConfigError(f"unknown embedding backend {backend!r}; valid names: auto, {', '.join(sorted(EMBEDDERS))}")
    backend = resolve_backend(settings.replace(embedding_backend=backend))
    key = (backend, settings.embedding.model, settings.embedding.device, settings.embedding.batch_size,
           str(settings.storage.index_dir) if backend.startswith("onnx") else "")
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
    backend = resolve_backend(settings)
    if backend.startswith("onnx"):  # the index's own export, opened for one question (no layout passes)
        from .onnx_embed import OnnxEmbedder

        key = ("query", backend, settings.embedding.model, str(settings.storage.index_dir))
        if key not in _CACHE:
            found = OnnxEmbedder.cached(settings.embedding.model, settings.storage.index_dir,
                                        backend.removeprefix("onnx-"), fast_load=True)
            _CACHE[key] = found or get_embedder(settings, backend)
        return _CACHE[key]
    if backend == "torch" and settings.embedding.device in ("auto", "cpu"):
        from .onnx_embed import OnnxEmbedder

        key = ("query", settings.embedding.model, str(settings.storage.index_dir))
        if key not in _CACHE:
            found = OnnxEmbedder.cached(settings.embedding.model, settings.storage.index_dir, "fp32", fast_load=True)
            if found is not None and (found.min_cosine or 0.0) >= QUERY_MIN_COSINE:
                _CACHE[key] = found
        if key in _CACHE:
            return _CACHE[key]
    return get_embedder(settings, backend)


def prepare_query_embedder(settings: Settings) -> str:
    """After a torch ingest (torch is loaded anyway), export the fp32 query encoder once; "" or a note."""
    if resolve_backend(settings) != "torch":
        return ""
    from .onnx_embed import OnnxEmbedder

    try:
        OnnxEmbedder.build(settings.embedding.model, settings.storage.index_dir, "fp32")
    except ConfigError as exc:  # an architecture the exporter cannot take: queries keep using torch
        return f"note: no fast query encoder ({exc}); questions will load torch"
    return ""
