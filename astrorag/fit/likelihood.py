"""The photometric likelihood every evidence-based fit runs: Gaussian errors that the fit may inflate.

A catalog's errors (with the fit's error floor) say how well the *data* are known, not how well a model can
make them. When no model of the family can reach the photometry, a likelihood with the catalog's errors makes
every ln Z difference as large as the misfit (chi2_red 9 multiplies a real gain by about 9), and the Kass &
Raftery scale no longer applies. So the errors carry one free factor ``s >= 1``:
``sigma_i = s * err_i``, with a log-uniform (scale-invariant) prior over :data:`INFLATION_PRIOR`, and
the normalisation ``-sum ln(s err_i)`` kept, so that a model which fits needs no inflation and is not charged
for it, while a model that misses pays in ln Z for the inflation it needs. ln Z and its gains then carry the
misfit; the posterior of ``s`` says how far the best model of the family is from the data.

A fit that needs ``s`` above :data:`MAX_INFLATION` is *rejected by the data*: the fit errors already hold a
5 % floor (the calibration and template allowance commonly adopted in JWST SED fitting), and a factor 2 on top
means the model misses by more than twice that in every band. Such a fit is reported as "no model fits; best
available", never as a decisive result.

Examples
--------
>>> import numpy as np
>>> like = MismatchLikelihood()
>>> obs, err, model = np.array([1.0, 2.0]), np.array([0.1, 0.1]), np.array([1.0, 2.0])
>>> round(like.log_likelihood(obs, err, model, 1.0) - like.log_likelihood(obs, err, model, 2.0), 3)
1.386
>>> round(like.inflation_from_unit(0.0), 6), round(like.inflation_from_unit(1.0), 6)
(1.0, 10.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Prior range of the error-inflation factor (log-uniform). The top admits the worst development LRD under
#: the baseline (chi2_red 67, s ~ 8).
INFLATION_PRIOR = (1.0, 10.0)
#: A fit that needs its errors inflated by more than this is rejected by the data (see the module's text).
MAX_INFLATION = 2.0
#: After inflation, a chi-square probability below this also rejects the fit (the inflation hit its cap).
REJECT_P = 0.01
#: The posterior's name for the inflation factor.
INFLATION_NAME = "noise:inflation"


@dataclass(frozen=True)
class MismatchLikelihood:
    """Gaussian photometric likelihood with a free error-inflation factor (one extra sampled dimension)."""

    prior: tuple[float, float] = INFLATION_PRIOR
    max_inflation: float = MAX_INFLATION

    def inflation_from_unit(self, u: float) -> float:
        """The inflation factor at ``u`` in [0, 1] of its log-uniform prior (the sampler's unit cube)."""
        lo, hi = (math.log(v) for v in self.prior)
        return float(math.exp(lo + u * (hi - lo)))

    def log_likelihood(self, observed: np.ndarray, errors: np.ndarray, model: np.ndarray, inflation: float) -> float:
        """ln L of ``model`` given ``observed`` with ``errors`` inflated by ``inflation`` (any one unit)."""
        sigma = inflation * errors
        chi2 = float(np.sum(((observed - model) / sigma) ** 2))
        return -0.5 * chi2 - float(np.sum(np.log(sigma))) - 0.5 * len(observed) * math.log(2 * math.pi)

    def rejects(self, inflation: float | None, chi2: float, dof: int) -> str:
        """Why the data reject a fit that needed ``inflation`` (median), or ``""`` when they accept it."""
        from .base import chi2_probability

        if inflation is None:
            return ""
        if inflation > self.max_inflation:
            return f"errors inflated x{inflation:.2f} (bound {self.max_inflation:g})"
        p = chi2_probability(chi2 / inflation ** 2, dof)
        if dof > 0 and p < REJECT_P:
            return f"chi2_red {chi2 / inflation ** 2 / dof:.1f} after inflation (p = {p:.0e})"
        return ""


LIKELIHOOD = MismatchLikelihood()
