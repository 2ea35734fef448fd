"""One typed result for a table of sources: magnitudes, diagnostics, criteria, the LRD verdict, symptoms.

Everything is computed once, vectorised, with no language model; the advisor, the catalog runner, the
plot and the evaluation harness all read this object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import criteria as crit
from . import diagnostics
from . import symptoms as symp
from .magnitudes import Magnitudes
from .photometry import Photometry


@dataclass
class SEDAnalysis:
    """The deterministic analysis of N sources.

    Examples
    --------
    >>> from astrorag.sed import synthetic as syn
    >>> a = analyse(syn.population("lrd", 5, seed=1))
    >>> len(a), a.lrd_flag.shape, "v_shaped_sed" in a.symptoms
    (5, (5,), True)
    """

    phot: Photometry
    mags: Magnitudes
    diagnostics: diagnostics.Diagnostics
    criteria: list[crit.Criterion]
    lrd_flag: np.ndarray           # 1 / 0 / NaN (not classifiable)
    lrd_score: np.ndarray          # share of evaluable criteria that pass
    lrd_likeness: np.ndarray       # 0-1 sliding scale (crit.lrd_likeness)
    lrd_votes: np.ndarray          # per source: a bit mask of the criteria that pass (see votes())
    symptoms: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.phot)

    def symptom_names(self, i: int) -> list[str]:
        """Source ``i``'s symptoms, in the vocabulary's order."""
        return [s for s in symp.SYMPTOM_ORDER if self.symptoms[s][i]]

    def votes(self, i: int) -> list[str]:
        """The criteria source ``i`` passes."""
        return crit.unpack_votes(int(self.lrd_votes[i]), tuple(c.name for c in self.criteria))

    def is_lrd(self, i: int) -> bool | None:
        return None if np.isnan(self.lrd_flag[i]) else bool(self.lrd_flag[i])


def analyse(phot: Photometry) -> SEDAnalysis:
    """Magnitudes, diagnostics, criteria, the LRD verdict and symptoms for every source."""
    mags = Magnitudes.of(phot)
    diag = diagnostics.compute(phot, mags)
    colours = crit.Colours(phot, mags)
    criteria = crit.evaluate(phot, mags, diag, colours)
    verdict = crit.lrd_flag(criteria, has_compactness="compactness" in phot.extras, redshift=phot.z)
    symptoms = symp.derive(diag, colours, phot.extras, verdict.flag)
    likeness = crit.lrd_likeness(verdict.score, diag)
    return SEDAnalysis(phot, mags, diag, criteria, verdict.flag, verdict.score, likeness, verdict.votes, symptoms)
