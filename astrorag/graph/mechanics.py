"""CIGALE mechanics the rules must respect, and a check that finds rules which, followed literally, make a
fit worse.

The facts come from CIGALE's module sources (Boquien et al. 2019, arXiv:1811.03094; Yang et al. 2020,
arXiv:2001.08263), summarised in shared/REFERENCES.md:

- dustatt_modified_starburst: the lines are attenuated by ``E_BV_lines``, the stellar continuum by
  ``E_BV_factor x E_BV_lines``; young and old stars get the same continuum E(B-V).
- skirtor2016: ``fracAGN`` is the AGN share of the dust luminosity unless ``lambda_fracAGN`` ("min/max" in
  micron, default "0/0") names a wavelength range; polar-dust ``EBV`` (SMC law by default) reddens the disc
  only in type-1 views and its energy is re-emitted as a greybody.
- xray: ``max_dev_alpha_ox`` (default 0.2) discards models far from the empirical alpha_ox relation; the
  default ``alpha_ox`` grid is -1.9 to -1.1.
"""

from __future__ import annotations

import re

from .types import Rule

CALZETTI_RV = 4.05            # Calzetti et al. 2000, the modified-starburst base curve
SMC_RV = 2.74                 # Gordon et al. 2003 SMC bar, skirtor2016's default polar-dust law
CALZETTI_E_BV_FACTOR = 0.44   # continuum-to-lines colour-excess ratio of Calzetti et al. 2000
ALPHA_OX_DEFAULT_GRID = (-1.9, -1.1)
MAX_DEV_ALPHA_OX_DEFAULT = 0.2
#: Infrared/ALMA limits on A_V in LRDs (Chen et al. 2025, arXiv:2505.22600): about 1-1.5 at most.
LRD_MAX_AV = 1.5


def modified_starburst_ebv(e_bv_lines: float, e_bv_factor: float) -> tuple[float, float]:
    """(E(B-V) of the lines, E(B-V) of the stellar continuum) in dustatt_modified_starburst.

    >>> modified_starburst_ebv(0.5, 0.44)
    (0.5, 0.22)
    """
    return e_bv_lines, round(e_bv_lines * e_bv_factor, 6)


def stellar_av(e_bv_lines: float, e_bv_factor: float = CALZETTI_E_BV_FACTOR) -> float:
    """Stellar A_V of the modified-starburst law: R_V x continuum E(B-V).

    >>> round(stellar_av(1.7), 2)
    3.03
    """
    return CALZETTI_RV * modified_starburst_ebv(e_bv_lines, e_bv_factor)[1]


def polar_av(ebv: float) -> float:
    """A_V of skirtor2016's polar dust with its default SMC law.

    >>> round(polar_av(0.5), 2)
    1.37
    """
    return SMC_RV * ebv


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def range_bounds(text: str) -> tuple[float, float] | None:
    """Lowest and highest number of a range's leading part (before any parenthesis), if it has numbers.

    >>> range_bounds("0.1 - 0.5 (A_V up to about 1.5)")
    (0.1, 0.5)
    """
    head = text.split("(")[0]
    values = [float(v) for v in _NUMBER.findall(head.replace(" - ", " "))]
    return (min(values), max(values)) if values else None


def check_rule(rule: Rule) -> list[str]:
    """What is wrong with a rule's CIGALE mechanics; an empty list when nothing is.

    Examples
    --------
    >>> from astrorag.graph.types import Action
    >>> bad = Rule("x", ("emission_line_excess", "optical_underestimated"),
    ...            Action("increase", "E_BV_factor", "dustatt_modified_starburst"), "why", 0.5, ("1811.03094",), "seed")
    >>> check_rule(bad)[0].startswith("raising E_BV_factor dims the stellar continuum")
    True
    """
    problems: list[str] = []
    a = rule.action
    also = dict(a.also)
    text = f"{a.range} {a.change}".lower()
    if a.parameter == "E_BV_factor" and a.direction == "increase" and "optical_underestimated" in rule.condition:
        problems.append("raising E_BV_factor dims the stellar continuum (E_BV_factor x E_BV_lines) and leaves the "
                        "lines alone: an optical deficit gets worse; lower E_BV_lines at a fixed product instead")
    if a.parameter == "E_BV_lines" and a.direction == "decrease" and "emission_line_excess" in rule.condition \
            and "E_BV_factor" not in also:
        problems.append("lowering E_BV_lines alone also brightens the continuum; raise E_BV_factor with it")
    mentions_optical_share = "optical light" in text or "rest-optical light" in text
    if ((a.parameter == "fracAGN" or "fracAGN" in text.replace("fracagn", "fracAGN")) and mentions_optical_share
            and also.get("lambda_fracAGN", "0/0") in ("0/0", "") and "lambda_fracagn" not in text):
        problems.append("fracAGN is a share of the dust luminosity unless lambda_fracAGN names a range: a "
                        "share of the optical light needs lambda_fracAGN (e.g. 0.4/0.7)")
    if ((a.parameter == "alpha_ox" or "alpha_ox" in also) and a.parameter != "max_dev_alpha_ox"
            and "max_dev_alpha_ox" not in also):
        problems.append(f"models far from the alpha_ox relation are discarded unless max_dev_alpha_ox "
                        f"(default {MAX_DEV_ALPHA_OX_DEFAULT}) is relaxed")
    if a.parameter == "max_dev_alpha_ox" and "alpha_ox" not in also:
        problems.append(f"the default alpha_ox grid stops at {ALPHA_OX_DEFAULT_GRID[0]}: extend alpha_ox too")
    ebv_ranges = [a.range] if a.parameter == "EBV" else []
    ebv_ranges += [also["EBV"]] if "EBV" in also else []
    for r in ebv_ranges:
        bounds = range_bounds(r)
        if bounds and polar_av(bounds[1]) > LRD_MAX_AV + 0.1:
            problems.append(f"polar EBV up to {bounds[1]} is A_V = {polar_av(bounds[1]):.1f} with the SMC law, above "
                            f"the infrared/ALMA limits (A_V <~ {LRD_MAX_AV}); skirtor2016 re-emits it in the far-IR")
    if a.parameter == "f_burst" and "lightly attenuated" in f"{text} {rule.rationale.lower()}":
        problems.append("dustatt_modified_starburst gives young and old stars one continuum E(B-V): a lightly "
                        "attenuated burst beside reddened older stars cannot be made this way")
    return problems
