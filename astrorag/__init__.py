"""astrorag: citable answers and SED-fitting advice from the astronomy literature, offline.

Examples
--------
>>> from astrorag import Settings
>>> Settings(k=4).retrieval.k
4
"""

__version__ = "0.1.0"

from .errors import AstroRagError
from .index.types import Answer, Chunk, Document, Evidence
from .settings import Settings

__all__ = ["Answer", "AstroRagError", "Chunk", "Document", "Evidence", "Settings", "__version__"]
