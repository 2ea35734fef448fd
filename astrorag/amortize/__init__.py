"""Amortized posteriors of the baseline fit for every source of a catalog (simulation-based inference).

A neural posterior estimator trained once on simulations of the baseline model through a catalog's bands
gives each source posterior draws in milliseconds; a posterior-predictive goodness of fit and an
out-of-distribution score flag the sources the baseline physics cannot explain, which alone go on to the
rules and the refit loop. Needs the ``sbi`` extra (``pip install -e ".[sbi]"``).
"""

from .model import Artifact, need_sbi
from .simulator import DERIVED, PARAMETERS, NoiseModel

__all__ = ["DERIVED", "PARAMETERS", "Artifact", "NoiseModel", "need_sbi"]
