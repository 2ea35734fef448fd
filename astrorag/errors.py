"""One exception hierarchy for astrorag.

Every message says what went wrong *and* how to fix it; the CLI prints the message and exits
with a non-zero code instead of a traceback.
"""

from __future__ import annotations


class AstroRagError(Exception):
    """Root of every error astrorag raises on purpose."""

    exit_code = 2


class ConfigError(AstroRagError, ValueError):
    """A setting has a wrong name, type or value."""


class ExportRefusedError(ConfigError):
    """An ONNX export disagrees with its reference beyond the allowed cosine; nothing was cached."""


class InputError(AstroRagError, ValueError):
    """An input file or record cannot be read."""


class IndexMismatchError(AstroRagError):
    """An index was built with other embedding or chunking settings than the ones in use."""


class IndexNotFoundError(AstroRagError, FileNotFoundError):
    """The named index does not exist."""


class IndexDamagedError(AstroRagError):
    """A part of an index on disk is damaged; the message names the part and the repair."""


class BackendError(AstroRagError, LookupError):
    """An unknown backend name, or a backend that cannot do what was asked."""


class LLMUnavailableError(AstroRagError, ConnectionError):
    """The language-model server is not answering or lacks the model."""


class SourceError(AstroRagError, RuntimeError):
    """A literature service (ADS, arXiv) answered with an error."""


class LLMTimeoutError(LLMUnavailableError, TimeoutError):
    """The model is running but did not reply in time (a slow model, not a missing server)."""


class ContextOverflowError(LLMUnavailableError):
    """The prompt does not fit the model's context; ``n_ctx`` is the size the server reported, if it did."""

    def __init__(self, message: str, n_ctx: int | None = None):
        super().__init__(message)
        self.n_ctx = n_ctx
