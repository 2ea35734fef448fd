"""Synthetic photometry with known truth, for tests and the evaluation harness.

Spectral shapes are piecewise power laws in f_nu joined at the Balmer limit (with a break), the
turn to the near-IR bump and the Rayleigh-Jeans tail; an AGN torus adds hot dust rising as
lambda^2 in f_nu; attenuation follows the Calzetti et al. 2000 curve (arXiv:astro-ph/9911459).
They are not galaxy models: they produce the colours and residual patterns the diagnostics are meant
to recognise, with noise, so that those can be checked against a known answer.
"""

from __future__ import annotations

import numpy as np

from .filters import get_filter, line_weight_per_um
from .photometry import Photometry
from .units import ab_to_ujy

HIGHZ_BANDS = ("f606w", "f814w", "f090w", "f115w", "f150w", "f200w", "f277w", "f356w", "f410m", "f444w")
LOWZ_BANDS = ("f435w", "f606w", "f814w", "f125w", "f160w", "f090w", "f115w", "f150w", "f200w", "f277w", "f356w",
              "f444w", "f770w", "f1000w", "f1500w", "f2100w")
BALMER = 0.3645


def calzetti_k(lam_um: np.ndarray) -> np.ndarray:
    """Calzetti et al. 2000 attenuation curve k(lambda), R_V = 4.05, for 0.12-2.2 micron (clipped outside)."""
    lam = np.clip(lam_um, 0.12, 2.2)
    short = 2.659 * (-2.156 + 1.509 / lam - 0.198 / lam ** 2 + 0.011 / lam ** 3) + 4.05
    long = 2.659 * (-1.857 + 1.040 / lam) + 4.05
    return np.maximum(np.where(lam < 0.63, short, long), 0.0)


def stellar_fnu(lam: np.ndarray, beta_uv: np.ndarray, beta_opt: np.ndarray, break_mag: np.ndarray) -> np.ndarray:
    """Continuum shape in f_nu (arbitrary units, 1 at the Balmer limit on the blue side), per row."""
    a_uv, a_opt = (beta_uv + 2)[:, None], (beta_opt + 2)[:, None]
    jump = 10 ** (0.4 * break_mag)[:, None]
    blue = (lam / BALMER) ** a_uv
    red = jump * (lam / BALMER) ** a_opt
    at_1um = jump * (1.0 / BALMER) ** a_opt
    nir = at_1um * lam ** 0.3
    at_2um = at_1um * 2.0 ** 0.3
    tail = at_2um * (lam / 2.0) ** -1.5
    f = np.where(lam < BALMER, blue, np.where(lam < 1.0, red, np.where(lam < 2.0, nir, tail)))
    return np.where(lam < 0.1216, 0.0, f)  # the Lyman-alpha forest and break


def _observe(rng, fnu_rest: np.ndarray, bands: list, depth_mag: float, frac_err: float) -> tuple[np.ndarray, ...]:
    floor = ab_to_ujy(depth_mag) / 5.0
    err = np.sqrt((frac_err * np.abs(fnu_rest)) ** 2 + floor ** 2)
    return fnu_rest + rng.normal(size=fnu_rest.shape) * err, err


def _phot(ids, z, bands, flux, err, model=None) -> Photometry:
    n = len(ids)
    return Photometry(np.array(ids), np.asarray(z, dtype=float), bands, flux, err, np.zeros_like(flux, dtype=bool),
                      np.arange(1, n + 1), model, {})


def population(kind: str, n: int, seed: int = 0, bands=HIGHZ_BANDS) -> Photometry:
    """``kind``: "lrd" (V-shaped), or "normal" (young, evolved and dusty galaxies with no V shape), at 4.5 < z < 8.5."""
    rng = np.random.default_rng(seed)
    filt = [get_filter(b) for b in bands]
    z = rng.uniform(4.5, 8.5, n)
    lam = np.array([f.pivot_um for f in filt])[None, :] / (1 + z[:, None])
    if kind == "lrd":
        buv, bopt, brk = rng.uniform(-2.5, -1.0, n), rng.uniform(0.5, 3.0, n), rng.uniform(0.0, 0.5, n)
    elif kind == "normal":
        # Not V-shaped: blue-blue star-forming, intermediate, evolved (red UV, break) and dusty (red UV).
        sub = rng.integers(0, 4, n)
        buv = np.choose(sub, [rng.uniform(-2.7, -1.8, n), rng.uniform(-2.0, -1.2, n), rng.uniform(-1.0, 0.5, n),
                              rng.uniform(-1.2, 0.5, n)])
        bopt = np.choose(sub, [rng.uniform(-2.7, -1.8, n), buv + rng.uniform(-0.5, 0.5, n), rng.uniform(-1.5, 0.0, n),
                               rng.uniform(-1.5, 0.0, n)])
        # An evolved population's break grows with age, which the age of the Universe caps: about 0.95 Gyr
        # at z = 5 and 0.5 Gyr at z = 8.5 (t ~ 0.95 Gyr (6 / (1 + z))^1.5 in the matter era), so the largest
        # breaks (~0.8 mag) are allowed only at the low-redshift end.
        age_frac = np.minimum(1.0, (6.0 / (1.0 + z)) ** 1.5)
        brk = np.choose(sub, [rng.uniform(0.0, 0.15, n), rng.uniform(0.1, 0.4, n),
                              0.3 + 0.5 * age_frac * rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 0.3, n)])
    else:
        raise ValueError(f"unknown population {kind!r}; use lrd or normal")
    shape = stellar_fnu(lam, buv, bopt, brk)
    j444 = [f.short for f in filt].index("f444w")
    target = ab_to_ujy(rng.uniform(24.0, 27.0, n))
    fnu = shape * (target / shape[:, j444])[:, None]
    flux, err = _observe(rng, fnu, filt, depth_mag=29.0, frac_err=0.03)
    return _phot([f"{kind}-{i}" for i in range(n)], z, filt, flux, err)


#: Rest-frame [OIII]+H-beta equivalent widths of star-forming emitters at z ~ 7 (Daikuhara et al. 2025,
#: arXiv:2507.13456: 119 F410M-excess emitters, 420-6850 A, median about 1700 A, 19 of 119 above 3000 A):
#: log-normal with that median and 16 % above 3000 A, cut to the observed range.
EW_OIII_HB_MEDIAN_AA, EW_OIII_HB_SIGMA_LN, EW_OIII_HB_RANGE_AA = 1700.0, 0.57, (420.0, 6850.0)
#: Shares of the [OIII]+H-beta flux: H-beta : [OIII]4959 : [OIII]5007 = 1 : 2 : 6 ([OIII]5007/4959 = 2.98 by
#: atomic physics; [OIII]5007/H-beta ~ 6 in z > 6 star-forming galaxies); H-alpha = 2.86 H-beta (case B).
LINES_UM = {0.4861: 1 / 9, 0.4959: 2 / 9, 0.5007: 6 / 9}
HALPHA_UM, HALPHA_OVER_HBETA = 0.6563, 2.86


def strong_line_emitters(n: int, seed: int = 0, z_range: tuple[float, float] = (7.0, 9.0),
                         bands=HIGHZ_BANDS) -> Photometry:
    """Blue star-forming galaxies with strong [OIII]+H-beta (and H-alpha), the population that fakes a red
    F444W at z ~ 7-9: a power-law continuum with beta ~ U(-2.7, -1.5) (blue, as these emitters are), lines of
    the published EW distribution added through every band's transmission curve."""
    rng = np.random.default_rng(seed)
    filt = [get_filter(b) for b in bands]
    z = rng.uniform(*z_range, n)
    beta = rng.uniform(-2.7, -1.5, n)
    lam = np.array([f.pivot_um for f in filt])[None, :] / (1 + z[:, None])
    fnu = np.where(lam < 0.1216, 0.0, (lam / BALMER) ** (beta + 2)[:, None])  # f_lambda ~ lambda^beta
    ew = np.clip(EW_OIII_HB_MEDIAN_AA * np.exp(EW_OIII_HB_SIGMA_LN * rng.normal(size=n)), *EW_OIII_HB_RANGE_AA)
    # (rest micron, rest EW) of each line; H-alpha's EW is its flux (2.86 H-beta) over the continuum at 6563 A.
    lines = [(line, share * ew) for line, share in LINES_UM.items()]
    lines.append((HALPHA_UM, HALPHA_OVER_HBETA * LINES_UM[0.4861] * ew * (HALPHA_UM / 0.4861) ** -beta))
    pivot = np.array([f.pivot_um for f in filt])
    boost = np.ones_like(fnu)
    for line, ew_line in lines:
        observed = line * (1 + z)
        for j, f in enumerate(filt):
            # the line through the band's transmission curve, against the continuum's f_lambda at the pivot
            frac = ew_line * 1e-4 * (1 + z) * line_weight_per_um(f.name, observed) * (observed / pivot[j]) ** beta
            boost[:, j] += frac
    shape = fnu * boost
    j444 = [f.short for f in filt].index("f444w")
    target = ab_to_ujy(rng.uniform(25.0, 27.5, n))
    flux, err = _observe(rng, shape * (target / shape[:, j444])[:, None], filt, depth_mag=29.0, frac_err=0.03)
    return _phot([f"emitter-{i}" for i in range(n)], z, filt, flux, err)


MISSPECIFICATIONS = ("too_little_attenuation", "missing_agn", "wrong_sfh")


def misspecified(kind: str, n: int, seed: int = 0, bands=LOWZ_BANDS) -> Photometry:
    """Observed photometry and a 'fit' with one injected mis-specification, at 1 < z < 2.5 with MIRI.

    - too_little_attenuation: the model lacks dE(B-V) = 0.15-0.4 of Calzetti attenuation (too bright, bluest most);
    - missing_agn: the data hold a hot-dust torus (f_nu ~ lambda^2 beyond 1.5 micron) the model lacks;
    - wrong_sfh: the model's population is too old: too faint in the UV, too bright redward of the break.
    """
    rng = np.random.default_rng(seed)
    filt = [get_filter(b) for b in bands]
    z = rng.uniform(1.0, 2.5, n)
    lam = np.array([f.pivot_um for f in filt])[None, :] / (1 + z[:, None])
    truth = stellar_fnu(lam, rng.uniform(-2.2, -1.2, n), rng.uniform(-2.0, -1.0, n), rng.uniform(0.0, 0.4, n))
    model = truth.copy()
    if kind == "too_little_attenuation":
        de = rng.uniform(0.15, 0.4, n)[:, None]
        model = truth * 10 ** (0.4 * de * calzetti_k(lam))
    elif kind == "missing_agn":
        hot = np.where(lam > 1.0, lam ** 2 - 1.0, 0.0)  # hot dust rising beyond rest 1 micron, 8 at 3 micron
        strength = rng.uniform(1.0, 5.0, n)[:, None] / 8.0  # torus = 1-5 x the median stellar flux at 3 micron
        truth = truth + strength * hot * np.median(truth, axis=1, keepdims=True)
    elif kind == "wrong_sfh":
        gamma = rng.uniform(0.4, 0.8, n)[:, None]
        uv_dim = rng.uniform(0.4, 0.6, n)[:, None]
        model = np.where(lam < BALMER, truth * uv_dim, truth * (lam / BALMER) ** gamma)
    else:
        raise ValueError(f"unknown mis-specification {kind!r}; use one of {', '.join(MISSPECIFICATIONS)}")
    scale = ab_to_ujy(rng.uniform(22.0, 24.0, n)) / np.nanmax(truth, axis=1)
    truth, model = truth * scale[:, None], model * scale[:, None]
    flux, err = _observe(rng, truth, filt, depth_mag=27.5, frac_err=0.05)
    return _phot([f"{kind}-{i}" for i in range(n)], z, filt, flux, err, model)


#: What counts as the right action for each mis-specification: (parameters, modules, directions).
RIGHT_ACTIONS = {
    "too_little_attenuation": ({"E_BV_lines", "Av_ISM"}, set(), {"increase"}),
    "missing_agn": ({"fracAGN"}, {"skirtor2016", "fritz2006"}, {"increase", "widen", "add_module"}),
    "wrong_sfh": ({"tau_main", "age_main", "f_burst", "age_burst"}, {"sfhdelayed", "sfh2exp", "sfhdelayedbq"},
                  {"increase", "decrease", "switch_module", "add_module"}),
}


def is_right(kind: str, parameter: str | None, module: str | None, direction: str) -> bool:
    params, modules, directions = RIGHT_ACTIONS[kind]
    hit = (parameter in params) or (parameter is None and module in modules)
    return bool(hit and direction in directions)
