"""From diagnostics to rule-graph symptoms, vectorised: one boolean array per symptom."""

from __future__ import annotations

import numpy as np

from ..graph.regions import REGIONS
from .criteria import Colours
from .diagnostics import RESIDUAL_THRESHOLD, STRONG_BREAK_MAG, Diagnostics

#: Thresholds, each a published or conventional boundary (see the docstring of :func:`derive`).
V_SHAPE_BETA_UV_MAX = -0.37       # Kocevski et al. 2024
V_SHAPE_BETA_OPT_MIN = 0.0        # Kocevski et al. 2024
BLUE_UV = -2.0
RED_UV = -1.0
FLAT_MIR_ALPHA = 0.5              # f_nu ~ lambda^alpha; hot dust rises with alpha >~ 1
HIGH_CHI2 = 5.0

SYMPTOM_ORDER = [
    "v_shaped_sed", "red_optical_continuum", "blue_uv_slope", "red_uv_slope", "strong_balmer_break",
    "sed_turnover_balmer_limit", "flat_mid_ir", "compact_source", "brown_dwarf_colours", "high_chi2",
    "emission_line_excess", "emission_line_deficit",
    *[f"{r}_{d}estimated" for r in REGIONS for d in ("over", "under")],
]


def derive(diag: Diagnostics, colours: Colours, extras: dict[str, np.ndarray],
           lrd_flag: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean symptom arrays.

    - v_shaped_sed: beta_UV < -0.37 and beta_opt > 0 (the Kocevski et al. 2024 slope cuts), or the source
      passes the LRD colour selection (blue UV and red optical colours);
    - red_optical_continuum / blue_uv_slope / red_uv_slope: beta_opt > 0, beta_UV < -2, beta_UV > -1;
    - strong_balmer_break: the colour across rest 0.3645 micron > 0.5 mag;
    - sed_turnover_balmer_limit: a V shape whose two power laws cross at 0.30-0.45 micron (Setton et al. 2024);
    - flat_mid_ir: mid-IR slope alpha < 0.5 (no hot-dust rise);
    - compact_source: compactness < 1.7 when the table has it;
    - brown_dwarf_colours: red long-wavelength colours but F115W-F200W <= -0.5 (the Kokorev et al. 2024 cut);
    - <region>_over/underestimated: mean (obs - model)/err of the region <= -2 / >= +2 (with a fit);
    - high_chi2: reduced chi-square > 5 (with a fit);
    - emission_line_excess: the bands holding H-alpha or [OIII]+H-beta are underpredicted by the fit by at
      least 2 sigma more, on average, than the line-free rest-optical bands (with a fit; the regions' threshold);
    - emission_line_deficit: the mirror image, the line bands overpredicted by at least 2 sigma more than their
      line-free neighbours: the model's lines are too strong for the continuum it fits.
    """
    n = len(diag.beta_uv)
    with np.errstate(invalid="ignore"):
        buv, bopt = diag.beta_uv, diag.beta_opt
        # A V shape by the slopes, or by the published colour cuts (``lrd_flag``, from criteria.lrd_flag).
        colour_v = np.nan_to_num(lrd_flag, nan=0.0) == 1
        out = {
            "v_shaped_sed": ((buv < V_SHAPE_BETA_UV_MAX) & (bopt > V_SHAPE_BETA_OPT_MIN)) | colour_v,
            "red_optical_continuum": bopt > V_SHAPE_BETA_OPT_MIN,
            "blue_uv_slope": buv < BLUE_UV,
            "red_uv_slope": buv > RED_UV,
            "strong_balmer_break": diag.balmer_break_mag > STRONG_BREAK_MAG,
            "flat_mid_ir": diag.mir_slope < FLAT_MIR_ALPHA,
            "high_chi2": (diag.chi2_red if diag.chi2_red is not None else np.full(n, np.nan)) > HIGH_CHI2,
        }
        lines = diag.line_resid if diag.line_resid is not None else np.full(n, np.nan)
        out["emission_line_excess"] = lines >= RESIDUAL_THRESHOLD
        out["emission_line_deficit"] = lines <= -RESIDUAL_THRESHOLD
        out["sed_turnover_balmer_limit"] = out["v_shaped_sed"] & (diag.turnover_um > 0.30) & \
            (diag.turnover_um < 0.45)
        comp = extras.get("compactness")
        out["compact_source"] = comp < 1.7 if comp is not None else np.zeros(n, dtype=bool)
        # Kokorev et al. 2024's brown-dwarf test: red long-wavelength colours with a blue F115W-F200W.
        out["brown_dwarf_colours"] = (colours.c("f277w", "f444w").above(0.7) == 1) & \
            (colours.c("f115w", "f200w").below(-0.5 + 1e-9) == 1)
        for region in REGIONS:
            r = diag.resid.get(region)
            if r is None:
                out[f"{region}_overestimated"] = np.zeros(n, dtype=bool)
                out[f"{region}_underestimated"] = np.zeros(n, dtype=bool)
            else:
                out[f"{region}_overestimated"] = r <= -RESIDUAL_THRESHOLD
                out[f"{region}_underestimated"] = r >= RESIDUAL_THRESHOLD
    return {k: np.asarray(out[k], dtype=bool) for k in SYMPTOM_ORDER}


def bitmask(symptoms: dict[str, np.ndarray]) -> np.ndarray:
    """Pack the symptoms of each source into one integer (for grouping a catalog by symptom set)."""
    mask = np.zeros(len(next(iter(symptoms.values()))), dtype=np.int64)
    for bit, name in enumerate(SYMPTOM_ORDER):
        mask |= symptoms[name].astype(np.int64) << bit
    return mask


def unpack(mask: int) -> list[str]:
    return [name for bit, name in enumerate(SYMPTOM_ORDER) if mask >> bit & 1]
