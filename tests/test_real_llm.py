"""Every generative path against a real model: Gemma 3 270M (a base model) through llama.cpp, in this
process and behind llama-cpp-python's own OpenAI-compatible server on 127.0.0.1 at its default context.

A base model echoes its prompt and stops only at the token limit: exactly what the degenerate-output
check is for. These tests assert what must hold whatever such a model writes: an answer is never empty,
citations are only retrieved keys and never come from an echo, the prompt fits the context that the
server really has, JSON replies follow the schema, and multiple-choice scoring reads log-probabilities.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from astrorag.assistant import Assistant
from astrorag.errors import LLMTimeoutError
from astrorag.evaluation.mcq import Question, extract_choice, mcq_prompt, predict_llm, run_mcq, without_echo
from astrorag.index.types import QueryParams
from astrorag.llm.openai_backend import OpenAIBackend

QUESTION = "What powers little red dots?"
MCQ = [["question", "choice0", "choice1", "choice2", "choice3", "answer"],
       ["Which planet has the strongest magnetic field?", "Mars", "Jupiter", "Venus", "Mercury", "1"],
       ["What powers the Sun?", "Fission", "Chemical burning", "Hydrogen fusion", "Gravitational collapse", "2"],
       ["Which is a dwarf planet?", "Pluto", "Titan", "Io", "Europa", "0"]]


def _cited_keys(text: str) -> set[str]:
    return {k.strip() for group in re.findall(r"\[([^\[\]]+)\]", text) for k in group.split(",")}


def _assert_honest(answer) -> None:
    """Never empty; citations only of retrieved evidence; a set-aside reply cites nothing of its own."""
    assert answer.text.strip(), "an empty answer"
    retrieved = {e.key for e in answer.evidence}
    assert {c.key for c in answer.citations} <= retrieved
    assert {c.key for c in answer.citations} <= _cited_keys(answer.text)
    assert "<evidence" not in answer.text.lower()
    if answer.degenerate:
        assert answer.degenerate_reason and any("set aside" in n for n in answer.notices)
        assert answer.text.startswith("Extractive answer")  # what the user sees instead of the echo


def test_in_process_ask_catches_the_echo_and_cites_only_retrieved_keys(small_settings, local_llm):
    assistant = Assistant(small_settings, llm=local_llm)
    try:
        response = assistant.stream(QUESTION, QueryParams(k=4))
        pieces = list(response)
        answer = response.answer
        _assert_honest(answer)
        # The base model repeats the system prompt: it is caught on its first line, and what was streamed
        # to the user holds no line of the echo.
        assert answer.degenerate and "repeats the prompt" in answer.degenerate_reason
        assert "You are astrorag" in answer.rejected_reply and "You are astrorag" not in "".join(pieces)
        # counted by the model's own tokenizer, with the context the model was loaded with
        assert answer.tokens["counted_by"] == "the model's tokenizer" and answer.tokens["n_ctx"] == 4096
        assert answer.tokens["prompt_tokens"] == local_llm.count_tokens(response.prepared.messages).tokens
    finally:
        assistant.close()


def test_in_process_prompt_beyond_the_context_is_fitted_with_a_notice(small_settings, gguf):
    from astrorag.llm.llamacpp_backend import LlamaCppBackend

    small = LlamaCppBackend(gguf, num_ctx=1024, max_tokens=32, temperature=0.0)
    assistant = Assistant(small_settings.replace(graph_rules=0), llm=small)
    try:
        answer = assistant.ask(QUESTION, QueryParams(k=8))
        _assert_honest(answer)
        assert answer.tokens["n_ctx"] == 1024 and answer.tokens["passages_left_out"] > 0
        assert answer.tokens["prompt_tokens"] + answer.tokens["reply_tokens"] <= 1024
        assert any("fitted to the model's context of 1024" in n for n in answer.notices)
    finally:
        assistant.close()
        small.close()


def test_cli_ask_with_the_llamacpp_backend_and_a_gguf(small_settings, gguf):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small")
    run = subprocess.run([sys.executable, "-m", "astrorag", "ask", QUESTION, "--backend", "llamacpp", "--model",
                          str(gguf), "--num-ctx", "4096", "--max-tokens", "48", "--json"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["answer"].strip() and isinstance(data["prompt_tokens"], int) and data["prompt_tokens"] > 200
    assert {c["key"] for c in data["citations"]} <= {e["key"] for e in data["evidence"]}
    if data["degenerate"]:
        assert data["degenerate_reason"] and data["rejected_reply"]
        assert {c["key"] for c in data["citations"]} <= _cited_keys(data["answer"])


def test_server_at_its_default_context_gets_a_fitted_prompt_and_says_how(small_settings, llama_server):
    """llama-cpp-python's server states its context only when refusing a prompt beyond it: astrorag's probe
    learns the 2,048 tokens, and the prompt is fitted to them: an answer with a notice, never silence."""
    settings = small_settings.replace(openai_url=llama_server.url, max_tokens=48, prompt_budget=0)
    assistant = Assistant(settings, backend="openai")
    try:
        answer = assistant.ask(QUESTION, QueryParams(k=6))
        _assert_honest(answer)
        assert answer.tokens["n_ctx"] == 2048 and "reported by the server" in answer.tokens["n_ctx_source"]
        assert answer.tokens["counted_by"] == "the server's tokenizer"
        assert any("fitted to the model's context of 2048" in n for n in answer.notices)
        assert answer.tokens["prompt_tokens"] < 2048
        again = assistant.ask("Are little red dots dusty galaxies or AGN?", QueryParams(k=6))
        _assert_honest(again)
        assert again.tokens["n_ctx"] == 2048
    finally:
        assistant.close()
    # With the default prompt budget (1,500 tokens) the same question fits the 2,048 tokens as it is.
    budgeted = Assistant(settings.replace(prompt_budget=1500), backend="openai")
    try:
        answer = budgeted.ask(QUESTION, QueryParams(k=6))
        _assert_honest(answer)
        assert answer.tokens["passages_left_out"] == 0 and answer.tokens["prompt_tokens"] <= 1500
        assert answer.tokens["n_ctx"] == 2048 and answer.tokens["reply_tokens"] <= 2048 - 1500
    finally:
        budgeted.close()


def test_server_streams_and_reports_why_it_stopped(llama_server):
    backend = OpenAIBackend(llama_server.url, "any-name", max_tokens=16, temperature=0.0)
    assert backend.available() == (True, "") and backend.model == "gemma-3-270m"  # the one model it serves
    assert backend.server().kind == "llama-cpp-python" and backend.concurrency == 1
    pieces = list(backend.chat([{"role": "user", "content": "Name three planets."}], stream=True))
    assert len(pieces) > 1 and backend.last_usage.finish_reason in ("stop", "length")
    assert backend.last_usage.first_token_s is not None


def test_json_schema_replies_through_llama_cpp_json_object_mode(llama_server, small_settings):
    """llama-cpp-python refuses response_format json_schema (HTTP 500); json_object with the schema is
    grammar-constrained, so even a base model's reply parses and follows the schema."""
    backend = OpenAIBackend(llama_server.url, "gemma-3-270m", max_tokens=60, temperature=0.0)
    schema = {"type": "object", "properties": {"planet": {"type": "string", "maxLength": 20},
                                               "moons": {"type": "integer"}},
              "required": ["planet", "moons"]}
    reply = json.loads("".join(backend.chat([{"role": "user", "content": "Mars as JSON."}], format=schema)))
    assert set(reply) == {"planet", "moons"} and isinstance(reply["moons"], int)
    # and the real distillation prompt and rule schema are accepted (a base model's rules may be malformed,
    # and then the report says so: the request itself is not refused)
    from astrorag.graph.distill import distill
    from astrorag.graph.model import RuleGraph
    from astrorag.index.types import Chunk, Document

    doc = Document.create(title="Little red dots", abstract="", arxiv_id="2401.09981")
    chunk = Chunk.create(doc.doc_id, 0, "Fitting LRDs needs an AGN component for the red optical continuum.")
    report = distill(RuleGraph(), backend, [(chunk, doc)])
    assert report.passages == 1 and report.proposed + report.malformed >= 1
    assert "refused" not in " ".join(report.reasons)


def test_mcq_by_log_probabilities_through_the_server(llama_server, tmp_path, small_settings):
    import csv

    suite = tmp_path / "mcq.csv"
    with open(suite, "w", newline="") as fh:
        csv.writer(fh).writerows(MCQ)
    backend = OpenAIBackend(llama_server.url, "gemma-3-270m", temperature=0.0)
    report = run_mcq(suite, small_settings, ["closed"], llm=backend, out=tmp_path / "r", log=None)
    assert report["modes"][0]["scoring"] == {"logprob": 3} and report["unparsed"] == 0
    lines = (tmp_path / "r" / "predictions.jsonl").read_text().splitlines()
    assert all(json.loads(line)["method"] == "logprob" for line in lines)


def test_in_process_logprobs_and_the_text_fallback_ignores_an_echo(local_llm):
    q = Question("q1", "Which planet has the strongest magnetic field?", ["Mars", "Jupiter", "Venus", "Mercury"], 1)
    scores = local_llm.option_logprobs(mcq_prompt(q), q.letters)
    assert scores is not None and all(s <= 0 for s in scores) and any(s > -30 for s in scores)
    p = predict_llm(q, local_llm)
    assert p.method == "logprob" and p.predicted in range(4)

    class TextOnly:  # the same model, asked for text: the base model echoes the option lines
        def __init__(self, llm):
            self.llm = llm

        def option_logprobs(self, messages, letters):
            return None

        def chat(self, messages, stream=False, format=None):
            return self.llm.chat(messages, stream=stream, format=format)

    text = predict_llm(q, TextOnly(local_llm))
    assert text.method == "text"
    # The reply is read without the lines that repeat the prompt: an echoed "A. Mars" is not a choice.
    rest = without_echo(text.raw, mcq_prompt(q))
    assert text.predicted == extract_choice(rest, q.options)
    if "A. Mars" in text.raw.splitlines() and not rest:
        assert text.predicted is None


def test_a_slow_model_is_reported_as_slow_not_missing(llama_server):
    backend = OpenAIBackend(llama_server.url, "gemma-3-270m", timeout=0.05, max_tokens=200)
    with pytest.raises(LLMTimeoutError, match="slow"):
        "".join(backend.chat([{"role": "user", "content": "Tell a long story about the Moon. " * 40}]))


def test_advise_narrative_from_an_echoing_model_is_set_aside_for_the_report(local_llm):
    """The advisor's narrative passes the same reply guard as an answer: the base model's echo of the prompt
    is stopped, the deterministic report stands in for it, and the JSON says so."""
    from astrorag.graph.model import RuleGraph
    from astrorag.sed.advisor import advise_source, structured_report
    from astrorag.sed.analysis import analyse
    from astrorag.sed.photometry import read_photometry
    from astrorag.workflows import LRD_EXAMPLES

    phot = read_photometry(LRD_EXAMPLES)
    i = int(list(phot.ids).index("11219"))
    advice = advise_source(analyse(phot), i, RuleGraph.from_seeds(), llm=local_llm)
    data = advice.to_dict()
    assert data["degenerate"] is True and "repeats the prompt" in data["degenerate_reason"]
    assert data["backend"] == "report" and data["narrative"] == structured_report(advice)
    assert "You are astrorag" not in data["narrative"] and "<evidence" not in data["narrative"]
    assert any("set aside" in n for n in data["notices"])
