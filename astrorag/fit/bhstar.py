"""A "black hole star" (BH*) continuum: an accreting black hole inside dense, essentially dust-free gas, whose
rest-optical light is a thermal photosphere and whose Balmer break comes from the gas, not from old stars.

The readings behind it: Naidu et al. 2025 (arXiv:2503.16596) and de Graaff et al. 2025 (arXiv:2503.16600),
dense-gas Balmer breaks with no stars needed (Inayoshi & Maiolino 2025, arXiv:2409.07805; Ji et al. 2025,
arXiv:2501.13082); LRD optical continua are modified blackbodies with T ~ 5,000 K and a tail to ~2,000 K over
116 LRDs (de Graaff et al. 2025b, arXiv:2511.21820); a host-subtracted stack of 98 LRDs is blackbody-like at
~4,050 K, the BH* giving ~20 % of the UV, ~50 % at the Balmer break and ~90 % beyond H-alpha, with a Balmer
decrement H-alpha/H-beta > 10 (Sun et al. 2026, arXiv:2601.20929). Liu et al. 2026 (arXiv:2603.02317) show
that blackbodies are only crude approximations of such atmospheres: this component is a photometric one,
enough to ask whether broad bands prefer it, not a spectral model.

The component, in the rest frame: ``f_lambda = K B_lambda(T) x (1 - b for lambda < 3645 A)`` plus broad
H-alpha and H-beta (Gaussians of sigma 2,000 km/s; H-beta = H-alpha / :data:`BALMER_DECREMENT`), no dust.
``K`` is set by the share ``s`` of the observed flux density at rest 5500 A that the BH* makes. Priors
(:data:`PRIORS`): T uniform over 2,000-9,000 K (the range de Graaff et al. 2025b measure, with room on both
sides); s log-uniform over 0.01-1.5 (from a trace to all of the optical light, noise allowed); b uniform over
0-0.95 (no break to the deepest gas breaks); broad H-alpha rest EW log-uniform over 10-2,000 A on the BH*
continuum (LRDs reach ~800 A on the total, Labbe et al. 2024, arXiv:2412.04557).

Examples
--------
>>> import numpy as np
>>> component = BlackHoleStar(redshift=5.0, bands=[(np.array([30000., 33000., 36000.]), np.ones(3))])
>>> flux = component.band_fluxes(np.array([5000.0, 1.0, 0.5, 100.0]), scale=1e-19)
>>> flux.shape, bool(flux[0] > 0)
((1,), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

H_PLANCK = 6.62607015e-27      # erg s
C_CM_S = 2.99792458e10
K_BOLTZMANN = 1.380649e-16     # erg / K
C_ANGSTROM_S = 2.99792458e18
L_SUN_ERG_S = 3.828e33
BALMER_LIMIT_AA = 3645.0
HALPHA_AA, HBETA_AA = 6562.8, 4861.3
REFERENCE_AA = 5500.0
#: Broad-line width (Gaussian sigma, km/s): FWHM ~ 4,700 km/s, as the AGN component's.
LINE_SIGMA_KMS = 2000.0
#: H-alpha / H-beta of the broad lines: LRDs show decrements above 10 (Sun et al. 2026) where case B gives 2.86.
BALMER_DECREMENT = 10.0
#: name -> (low, high, prior scale); the posterior's names are "bhstar:<name>".
PRIORS: dict[str, tuple[float, float, str]] = {
    "temperature": (2000.0, 9000.0, "linear"),
    "f5500_share": (0.01, 1.5, "log"),
    "balmer_break": (0.0, 0.95, "linear"),
    "halpha_ew": (10.0, 2000.0, "log"),
}
NAMES = tuple(PRIORS)


def planck_lambda(wave_aa: np.ndarray, temperature: float) -> np.ndarray:
    """B_lambda(T) in erg/s/cm2/A/sr at ``wave_aa`` (Angstrom)."""
    wave_cm = wave_aa * 1e-8
    x = H_PLANCK * C_CM_S / (wave_cm * K_BOLTZMANN * temperature)
    with np.errstate(over="ignore"):
        return 2 * H_PLANCK * C_CM_S ** 2 / wave_cm ** 5 / np.expm1(np.minimum(x, 700.0)) * 1e-8


def from_unit(cube: np.ndarray, priors: dict[str, tuple[float, float, str]] = PRIORS) -> np.ndarray:
    """The parameters (in :data:`NAMES` order) at a point of the unit cube."""
    out = np.empty(len(NAMES))
    for i, name in enumerate(NAMES):
        lo, hi, scale = priors[name]
        out[i] = 10 ** (math.log10(lo) + cube[i] * (math.log10(hi) - math.log10(lo))) if scale == "log" \
            else lo + cube[i] * (hi - lo)
    return out


@dataclass
class BlackHoleStar:
    """The BH* component of one source: its redshift and the bands' observed wavelength grids and curves."""

    redshift: float
    bands: list[tuple[np.ndarray, np.ndarray]]     # (observed wavelength in A, transmission) per fitted band
    _weights: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _distance_cm: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Photon-counting band averages of f_lambda, as bagpipes computes its own: sum(f T lambda dlambda) / norm.
        for wave, trans in self.bands:
            w = trans * wave * np.gradient(wave)
            self._weights.append(w / np.sum(w))

    def rest_shape(self, wave_rest: np.ndarray, params: np.ndarray) -> np.ndarray:
        """The continuum shape (arbitrary units) with the Balmer break, and the broad lines, at rest wavelengths."""
        temperature, _, brk, ew = params
        continuum = planck_lambda(wave_rest, temperature) * np.where(wave_rest < BALMER_LIMIT_AA, 1.0 - brk, 1.0)
        lines = np.zeros_like(wave_rest)
        for centre, strength in ((HALPHA_AA, ew), (HBETA_AA, ew / BALMER_DECREMENT)):
            sigma = centre * LINE_SIGMA_KMS / 2.99792458e5
            at_centre = float(planck_lambda(np.array([centre]), temperature)[0])
            lines += strength * at_centre * np.exp(-0.5 * ((wave_rest - centre) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        return continuum + lines

    def norm(self, params: np.ndarray, scale: float) -> float:
        """K: the factor that makes the observed continuum at rest 5500 A ``share x scale``."""
        reference = float(planck_lambda(np.array([REFERENCE_AA]), params[0])[0])
        return params[1] * scale / reference

    def band_fluxes(self, params: np.ndarray, scale: float) -> np.ndarray:
        """Observed band-averaged f_lambda of the BH* in each band (the units of ``scale``, the observed f_lambda at
        rest 5500 A that the share refers to)."""
        k = self.norm(params, scale)
        z1 = 1.0 + self.redshift
        return np.array([k * float(np.sum(self.rest_shape(wave / z1, params) * weights))
                         for (wave, _), weights in zip(self.bands, self._weights)])

    def luminosity_lsun(self, params: np.ndarray, scale_cgs: float) -> float:
        """L_bol of the BH* continuum (L_sun) when ``scale_cgs`` is the observed f_lambda at rest 5500 A in
        erg/s/cm2/A: sigma T^4 / pi of the blackbody, less what the break removes blueward of 3645 A."""
        if self._distance_cm is None:
            from astropy.cosmology import Planck18

            self._distance_cm = float(Planck18.luminosity_distance(self.redshift).to_value("cm"))
        wave = np.geomspace(500.0, 2e6, 2000)
        shape = planck_lambda(wave, params[0]) * np.where(wave < BALMER_LIMIT_AA, 1.0 - params[2], 1.0)
        flux = self.norm(params, scale_cgs) * (1 + self.redshift) * float(np.trapezoid(shape, wave))
        return 4 * math.pi * self._distance_cm ** 2 * flux / L_SUN_ERG_S

    def share_at(self, params: np.ndarray, rest_aa: float) -> float:
        """The BH*'s continuum at ``rest_aa`` relative to its value at rest 5500 A (to turn the 5500 A share
        into a share elsewhere, given the total model there)."""
        at = self.rest_shape(np.array([rest_aa]), np.array([params[0], 1.0, params[2], 0.0]))[0]
        return float(at / planck_lambda(np.array([REFERENCE_AA]), params[0])[0])


def load_bands(curves: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each curve file's (wavelength in A, transmission), as bagpipes reads them (two columns)."""
    bands = []
    for path in curves:
        data = np.loadtxt(path, comments="#")
        bands.append((np.asarray(data[:, 0], dtype=float), np.clip(np.asarray(data[:, 1], dtype=float), 0, None)))
    return bands
