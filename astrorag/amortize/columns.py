"""The amortized posterior as catalog columns, for ``advise-catalog --posteriors`` (one call per block)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .infer import posteriors
from .model import Artifact

#: Outputs written under their own names (the parameters' get a ``post_`` prefix).
PLAIN = ("ppc_pvalue", "ood_score", "unexplained", "failing_bands", "best_chi2_per_band")


@lru_cache(maxsize=2)
def _artifact(folder: str) -> Artifact:
    return Artifact.load(Path(folder))


def catalog_columns(folder: str, phot) -> dict[str, np.ndarray]:
    """``post_<parameter>_p16/p50/p84``, ``ppc_pvalue``, ``ood_score``, ``unexplained`` and
    ``failing_bands`` for a block of sources; upper limits and missing values are gaps the model handles."""
    artifact = _artifact(folder)
    columns = artifact.check_bands(tuple(b.short for b in phot.bands))
    flux, err = phot.flux[:, columns].astype(float), phot.err[:, columns].astype(float)
    present = ~phot.upper[:, columns] & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    result = posteriors(artifact, flux, err, present, phot.z)
    return {key if key in PLAIN else f"post_{key}": values for key, values in result.items()}
