"""AB magnitudes of a photometry table, computed once: the one place the AB zero point lives.

Every later step (slopes, colour cuts, the plot) reads these arrays. A band counts as *detected* at
S/N >= 2 (and not flagged as an upper limit); otherwise, where an error is known, it carries a 2-sigma
limit: the source is fainter than ``limit`` magnitudes there. Colour cuts use those limits where a
limit alone decides the cut (see :mod:`astrorag.sed.criteria`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .photometry import DETECTION_SNR, Photometry
from .units import MAG_PER_LN, ujy_to_ab

LIMIT_SIGMA = 2.0


@dataclass
class Magnitudes:
    """Per source and band: AB magnitude (any positive flux), its error, S/N, detection and 2-sigma limit."""

    mag: np.ndarray
    err: np.ndarray
    snr: np.ndarray
    detected: np.ndarray
    limit: np.ndarray  # faint limit (mag) where not detected but an error or upper limit is known, else NaN

    @classmethod
    def of(cls, phot: Photometry) -> Magnitudes:
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = ujy_to_ab(phot.flux)
            err = np.where(np.isfinite(mag), MAG_PER_LN * phot.err / phot.flux, np.nan)
            snr = np.where(phot.upper, np.nan, phot.flux / phot.err)
            detected = np.isfinite(mag) & np.isfinite(err) & (snr >= DETECTION_SNR) & ~phot.upper
            limit_flux = np.where(phot.upper, phot.flux,
                                  np.where(np.isfinite(phot.err) & (phot.err > 0),
                                           np.maximum(np.nan_to_num(phot.flux, nan=0.0), 0.0)
                                           + LIMIT_SIGMA * phot.err, np.nan))
            limit = np.where(detected, np.nan, ujy_to_ab(limit_flux))
        return cls(mag, err, snr, detected, limit)
