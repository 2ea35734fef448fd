"""In-process GGUF models through llama-cpp-python: AstroSage-8B's GGUF (or any other) with no server.

The model's own tokenizer counts the prompt exactly and its chat template (``tokenizer.chat_template`` in
the GGUF) formats it. A GGUF without a template (base models, e.g. the Gemma 3 270M on the package index)
gets a named one (:data:`TEMPLATES`) that keeps the system text: the format is chosen from the model's
architecture unless ``chat_format`` names one. Prompts are completed as text, so what is counted is
exactly what the model reads, and llama.cpp reuses the evaluated prefix (system prompt first, passages
last) from one question to the next.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendError, ContextOverflowError, LLMUnavailableError
from ..hardware import usable_cpus
from .base import DEFAULT_MAX_TOKENS, ContextSize, LLMBackend, TokenCount, Usage, letter_logprobs


@dataclass(frozen=True)
class Template:
    """A chat format: how turns are wrapped, and the text that ends the model's turn."""

    turn: str  # with {role} and {content}
    generation: str  # what opens the model's reply
    stop: tuple[str, ...]
    system_in_first_user: bool = False  # formats without a system role: the system text opens the first turn
    roles: tuple[tuple[str, str], ...] = ()  # renamed roles, e.g. assistant -> model

    def render(self, messages: list[dict]) -> str:
        turns = [dict(m) for m in messages]
        if self.system_in_first_user and turns and turns[0]["role"] == "system":
            system = turns.pop(0)["content"]
            if turns and turns[0]["role"] == "user":
                turns[0]["content"] = f"{system}\n\n{turns[0]['content']}"
            else:
                turns.insert(0, {"role": "user", "content": system})
        names = dict(self.roles)
        body = "".join(self.turn.format(role=names.get(t["role"], t["role"]), content=t["content"]) for t in turns)
        return body + self.generation


#: Named formats for GGUFs without a chat template. Gemma's has no system role: its own template puts the
#: system text at the start of the first user turn, and so does this one.
TEMPLATES: dict[str, Template] = {
    "gemma": Template("<start_of_turn>{role}\n{content}<end_of_turn>\n", "<start_of_turn>model\n",
                      ("<end_of_turn>", "<start_of_turn>"), system_in_first_user=True,
                      roles=(("assistant", "model"),)),
    "chatml": Template("<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n", ("<|im_end|>",)),
    "llama-3": Template("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
                        "<|start_header_id|>assistant<|end_header_id|>\n\n", ("<|eot_id|>",)),
}
_ARCH_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "llama": "llama-3", "qwen2": "chatml",
                   "qwen3": "chatml"}


class LlamaCppBackend(LLMBackend):
    """A GGUF model loaded in this process.

    Parameters
    ----------
    model_path : str or Path
        The ``.gguf`` file (e.g. AstroSage-8B's Q8_0 or a Q4_K_M quant).
    num_ctx : int
        The context window the model is loaded with; the prompt budget keeps ``max_tokens`` of it free.
    threads : int, optional
        Threads for prefill and generation; by default the CPUs this process may use.
    chat_format : str, optional
        A name from :data:`TEMPLATES` for a GGUF without a chat template (default: from its architecture).
    logits_all : bool
        Keep every position's logits (llama-cpp-python's own logprobs need it; costs n_ctx x vocabulary floats).

    Examples
    --------
    >>> LlamaCppBackend("missing.gguf")
    Traceback (most recent call last):
    ...
    astrorag.errors.BackendError: no GGUF model at missing.gguf: give its path with --model (or ASTRORAG_GGUF_MODEL); AstroSage-8B's is AstroMLab/AstroSage-8B-GGUF on Hugging Face
    """

    name = "llamacpp"

    def __init__(self, model_path: str | Path, num_ctx: int = 8192, temperature: float = 0.2,
                 max_tokens: int = DEFAULT_MAX_TOKENS, threads: int | None = None, chat_format: str | None = None,
                 seed: int = 0):
        super().__init__()
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise BackendError(f"no GGUF model at {model_path}: give its path with --model (or "
                               f"ASTRORAG_GGUF_MODEL); AstroSage-8B's is AstroMLab/AstroSage-8B-GGUF on Hugging Face")
        if chat_format is not None and chat_format not in TEMPLATES:
            raise BackendError(f"unknown chat format {chat_format!r}; valid names: {', '.join(TEMPLATES)}")
        # OpenMP's default busy-waiting makes threads spin against each other on a shared machine (decode
        # fell from ~35 to 1-3 tokens/s on 2 busy cores); passive waiting must be set before the library loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendError("the llamacpp backend needs llama-cpp-python: pip install 'astrorag[llm]' (it "
                               "compiles llama.cpp, 10-30 minutes on 2 cores)") from exc
        self._llama_cpp = llama_cpp
        self.path, self.model = path, path.name
        self.temperature, self.max_tokens, self.num_ctx, self.seed = temperature, max_tokens, num_ctx, seed
        self.threads = threads or usable_cpus()
        started = time.perf_counter()
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=num_ctx, n_threads=self.threads,
                                   n_threads_batch=self.threads, seed=seed, verbose=False)
        self.load_seconds = time.perf_counter() - started
        self._lock = threading.Lock()  # one context: one request at a time
        meta = self.llm.metadata
        self.architecture = meta.get("general.architecture", "")
        template = meta.get("tokenizer.chat_template")
        if chat_format is None and template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode(errors="replace")
            bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode(errors="replace")
            self._jinja = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
            self.template_name, self._template = "the GGUF's chat template", None
        else:
            self._jinja = None
            name = chat_format or _ARCH_TEMPLATES.get(self.architecture, "chatml")
            self._template = TEMPLATES[name]
            self.template_name = f"the {name!r} format" + ("" if template else " (the GGUF has no chat template)")

    # ---- the prompt -------------------------------------------------------------------------------

    def render(self, messages: list[dict]) -> tuple[str, list[str]]:
        """The prompt text the model reads for these messages, and the strings that end its turn."""
        if self._jinja is not None:
            formatted = self._jinja(messages=messages)
            stops = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
            return formatted.prompt, stops
        return self._template.render(messages), list(self._template.stop)

    def _tokens(self, prompt: str) -> list[int]:
        # A GGUF template writes its own BOS; a named format relies on the tokenizer adding it.
        return self.llm.tokenize(prompt.encode(), add_bos=self._jinja is None, special=True)

    def count_tokens(self, messages: list[dict]) -> TokenCount:
        return TokenCount(len(self._tokens(self.render(messages)[0])), "the model's tokenizer", exact=True)

    def context_size(self) -> ContextSize:
        return ContextSize(self.llm.n_ctx(), "the context the model was loaded with (num_ctx)")

    # ---- requests ---------------------------------------------------------------------------------

    def chat(self, messages: list[dict], stream: bool = False, format: dict | str | None = None) -> Iterator[str]:
        prompt, stops = self.render(messages)
        tokens = self._tokens(prompt)
        n_ctx = self.llm.n_ctx()
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(f"the prompt has {len(tokens)} tokens and the model was loaded with a "
                                       f"context of {n_ctx}: raise --num-ctx or lower --k", n_ctx)
        grammar = None
        if format is not None:
            from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

            grammar = LlamaGrammar.from_json_schema(json.dumps(format), verbose=False) if isinstance(format, dict) \
                else LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        max_tokens = min(self.reply_tokens(), n_ctx - len(tokens))
        start = time.perf_counter()
        first = finish = None
        count = 0
        with self._lock:
            try:
                pieces = self.llm.create_completion(tokens, max_tokens=max_tokens, temperature=self.temperature,
                                                    stop=stops, stream=True, grammar=grammar, seed=self.seed)
                for piece in pieces:
                    choice = piece["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    if choice.get("text"):
                        first = first or time.perf_counter() - start
                        count += 1
                        yield choice["text"]
            except ValueError as exc:  # llama-cpp-python reports a full context this way
                raise LLMUnavailableError(f"the model could not complete the prompt ({exc})") from exc
            finally:
                # Also when the caller stops the reply early. Streamed pieces are tokens, except where a
                # multi-byte character or a stop string was held back.
                self.last_usage = Usage(len(tokens), count, time.perf_counter() - start, finish_reason=finish,
                                        first_token_s=first)

    def option_logprobs(self, messages: list[dict], letters: str) -> list[float] | None:
        """Next-token log-probabilities of each option letter after the formatted prompt (one evaluation)."""
        tokens = self._tokens(self.render(messages)[0])
        if len(tokens) >= self.llm.n_ctx():
            return None
        with self._lock:
            self.llm.reset()
            self.llm.eval(tokens)
            logits = np.ctypeslib.as_array(self._llama_cpp.llama_get_logits(self.llm.ctx),
                                           shape=(self.llm.n_vocab(),)).astype(np.float64)
        logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        candidates = {}
        for letter in letters:
            for spelling in (letter, f" {letter}"):
                ids = self.llm.tokenize(spelling.encode(), add_bos=False, special=False)
                if len(ids) == 1:
                    candidates[spelling] = float(logprobs[ids[0]])
        return letter_logprobs(candidates, letters)

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()
