"""astrorag: citable answers and SED-fitting advice from the astronomy literature, offline.

Examples
--------
>>> from astrorag import Settings
>>> Settings(k=4).retrieval.k
4
"""

__version__ = "0.1.0"

from .errors import AstroRagError  # noqa: E402
from .settings import Settings  # noqa: E402
from .index.types import Answer, Chunk, Document, Evidence  # noqa: E402

__all__ = ["__version__", "AstroRagError", "Settings", "Answer", "Chunk", "Document", "Evidence"]
