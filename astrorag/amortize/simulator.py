"""The baseline fit as a simulator: parameters drawn from its priors, photometry through a catalog's bands.

The model is the one ``astrorag fit`` starts from (:func:`~astrorag.fit.spec.baseline` translated by
:func:`~astrorag.fit.bagpipes_fitter.to_bagpipes`): a delayed star-formation history, BC03 with nebular
emission at its log U, Calzetti attenuation with young and old stars attenuated alike. Its parameters and
their uniform priors are the fit's, with one difference said where it matters: the mass formed is drawn from
10^6-10^12 Msun rather than 10^4-10^13 (simulations of undetectable or impossibly bright galaxies teach the
network nothing). The redshift is not inferred: it is a conditioning input, drawn uniformly over the
artifact's range and read from the catalog at inference.

Noise is drawn the way catalogs have it (SBI++; Wang et al. 2023, arXiv:2304.05281): each band's 1-sigma
error from that band's own distribution of errors (the catalog's, where one is given), the fits' error floor
(5 % of the flux) added in quadrature, and bands missing at random so that one trained model serves rows with
gaps.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..fit.bagpipes_fitter import import_bagpipes, to_bagpipes
from ..fit.spec import age_cap_myr, baseline
from ..sed.filters import curve_file, get_filter

#: The inferred parameters, in the network's order, with the units the output columns use.
PARAMETERS = ("log_mass_formed", "age_gyr", "tau_gyr", "metallicity", "av")
#: Derived per draw, analytically, from the delayed history (no simulator call).
DERIVED = ("log_sfr",)
#: Mass formed, log10 Msun (see the module docstring for why narrower than the fit's 4-13).
LOG_MASS_RANGE = (6.0, 12.0)
#: The fits' error floor (``FitSettings.error_floor``): the fraction of the flux added to each error.
ERROR_FLOOR = 0.05
#: Without a catalog, a band's 1-sigma error is drawn around a 5-sigma depth of 29 AB (a deep JWST field) by
#: a factor 1/2 to 2, log-uniform.
DEFAULT_DEPTH_AB = 29.0
#: The share of bands dropped at random per simulation (at most all but four).
MISSING_SHARE = 0.1


@dataclass(frozen=True)
class BaselinePrior:
    """The baseline fit's priors at redshift ``z`` (the age's upper edge is the age of the Universe there).

    Examples
    --------
    >>> prior = BaselinePrior.at(5.0)
    >>> prior.ranges["av"], prior.ranges["metallicity"], prior.log_u
    ((0.0, 0.891), (0.1, 1.5), -3.0)
    """

    ranges: dict[str, tuple[float, float]]
    log_u: float

    @classmethod
    def at(cls, z: float) -> BaselinePrior:
        instructions, _ = to_bagpipes(baseline(z))
        delayed, dust = instructions["delayed"], instructions["dust"]
        ranges = {"log_mass_formed": LOG_MASS_RANGE, "age_gyr": tuple(delayed["age"]),
                  "tau_gyr": tuple(delayed["tau"]), "metallicity": tuple(delayed["metallicity"]),
                  "av": tuple(dust["Av"])}
        return cls({k: (float(v[0]), float(v[1])) for k, v in ranges.items()},
                   float(instructions["nebular"]["logU"]))


def support(z_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The box that holds every parameter at every redshift of ``z_range`` (low, high), for the network."""
    low, high = BaselinePrior.at(z_range[1]), BaselinePrior.at(z_range[0])
    lo = np.array([min(low.ranges[p][0], high.ranges[p][0]) for p in PARAMETERS])
    hi = np.array([max(low.ranges[p][1], high.ranges[p][1]) for p in PARAMETERS])
    return lo, hi


#: How close to a prior edge the unbounded coordinates reach (a share of the range).
EDGE = 1e-6


def _position(theta: np.ndarray, z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each parameter's range at ``z``: the support's, the age's capped by the age of the Universe."""
    low = np.broadcast_to(lo, theta.shape).copy()
    high = np.broadcast_to(hi, theta.shape).copy()
    j = PARAMETERS.index("age_gyr")
    caps = np.array([age_cap_myr(float(zz)) / 1e3 for zz in np.atleast_1d(z)])
    high[..., j] = np.minimum(high[..., j], caps)
    return low, high


def to_unbounded(theta: np.ndarray, z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The parameters as logits of their position within the prior's range at each redshift: the network
    learns an unbounded density, and every draw maps back inside the prior (none leaks out).

    >>> lo, hi = np.zeros(5), np.ones(5) * 2
    >>> u = to_unbounded(np.array([[1.0, 0.5, 1.0, 1.0, 1.0]]), np.array([5.0]), lo, hi)
    >>> np.allclose(from_unbounded(u, np.array([5.0]), lo, hi), [[1.0, 0.5, 1.0, 1.0, 1.0]])
    True
    """
    low, high = _position(theta, z, lo, hi)
    share = np.clip((theta - low) / (high - low), EDGE, 1 - EDGE)
    return np.log(share) - np.log1p(-share)


def from_unbounded(u: np.ndarray, z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_unbounded` (``u`` may carry leading draw axes: (..., N, P))."""
    low, high = _position(np.zeros(u.shape[-2:]), z, lo, hi)
    with np.errstate(over="ignore"):
        share = 1.0 / (1.0 + np.exp(-u))
    return low + share * (high - low)


def draw_parameters(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, len(PARAMETERS)) draws from the baseline's uniform priors, the age capped at each redshift."""
    prior = BaselinePrior.at(float(np.median(z)))
    theta = np.column_stack([rng.uniform(*prior.ranges[p], len(z)) for p in PARAMETERS])
    age_lo = prior.ranges["age_gyr"][0]
    cap = np.array([age_cap_myr(float(zz)) / 1e3 for zz in z])
    theta[:, PARAMETERS.index("age_gyr")] = age_lo + rng.uniform(size=len(z)) * (cap - age_lo)
    return theta


def log_sfr(theta: np.ndarray) -> np.ndarray:
    """log10 of the present star-formation rate (Msun/yr) of a delayed history, per row of ``theta``.

    SFR(t) = A t exp(-t/tau), normalised so that its integral over the age T is the mass formed M:
    SFR(T) = M T exp(-T/tau) / (tau^2 [1 - exp(-T/tau) (1 + T/tau)]).

    >>> round(float(log_sfr(np.array([[10.0, 0.5, 1.0, 1.0, 0.0]]))[0]), 3)  # 1e10 Msun over 0.5 Gyr, rising
    1.527
    """
    mass = 10 ** theta[:, PARAMETERS.index("log_mass_formed")]
    age = theta[:, PARAMETERS.index("age_gyr")] * 1e9
    tau = theta[:, PARAMETERS.index("tau_gyr")] * 1e9
    x = age / tau
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        norm = tau ** 2 * -np.expm1(np.log1p(x) - x)  # tau^2 [1 - e^-x (1 + x)], exact for small x
        return np.log10(mass * age * np.exp(-x) / norm)


@dataclass
class NoiseModel:
    """Per band, the 1-sigma errors (uJy) a catalog has: ``errors[b]`` holds a sample to draw from."""

    bands: tuple[str, ...]
    errors: dict[str, np.ndarray] = field(default_factory=dict)
    missing_share: float = MISSING_SHARE
    error_floor: float = ERROR_FLOOR

    @classmethod
    def default(cls, bands: tuple[str, ...]) -> NoiseModel:
        """Errors about a 5-sigma depth of :data:`DEFAULT_DEPTH_AB` in every band."""
        one_sigma = 10 ** ((23.9 - DEFAULT_DEPTH_AB) / 2.5) / 5.0
        grid = one_sigma * 2.0 ** np.linspace(-1, 1, 41)
        return cls(bands, {b: grid for b in bands})

    @classmethod
    def from_catalog(cls, bands: tuple[str, ...], err: np.ndarray) -> NoiseModel:
        """The catalog's own errors per band (finite and positive ones), as SBI++ draws them."""
        errors = {}
        for j, band in enumerate(bands):
            column = err[:, j]
            column = column[np.isfinite(column) & (column > 0)]
            if column.size < 10:
                raise InputError(f"band {band}: {column.size} usable errors in the catalog; the noise model needs at "
                                 "least 10 (train without --noise-from, or on a catalog with that band measured)")
            errors[band] = np.sort(column)
        return cls(bands, errors)

    def to_dict(self) -> dict:
        return {"bands": list(self.bands), "missing_share": self.missing_share, "error_floor": self.error_floor,
                "error_quantiles": {b: np.quantile(e, np.linspace(0, 1, 21)).tolist() for b, e in self.errors.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> NoiseModel:
        return cls(tuple(data["bands"]), {b: np.asarray(q, dtype=float) for b, q in data["error_quantiles"].items()},
                   float(data["missing_share"]), float(data["error_floor"]))

    def observe(self, flux: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noisy fluxes, the errors a catalog would list, and the mask of bands present."""
        n, nb = flux.shape
        err = np.column_stack([rng.choice(self.errors[b], n) for b in self.bands])
        sigma = np.sqrt(err ** 2 + (self.error_floor * flux) ** 2)
        observed = flux + rng.normal(size=flux.shape) * sigma
        present = rng.uniform(size=(n, nb)) >= self.missing_share
        # keep at least four bands per row: fewer cannot constrain five parameters
        short = present.sum(1) < 4
        present[short] = True
        return observed, err, present


class Simulator:
    """Noise-free baseline photometry (uJy) in ``bands`` for parameter rows and redshifts.

    One bagpipes model is built per simulator and updated per row (about 4 ms a row on one core).
    """

    def __init__(self, bands: tuple[str, ...]):
        self.bands = tuple(bands)
        self.curves = []
        for band in self.bands:
            path = curve_file(get_filter(band))
            if path is None:
                raise InputError(f"band {band} has no transmission curve here (known only by its pivot); amortized "
                                 "posteriors need every band's curve: leave it out of --bands")
            self.curves.append(str(path))
        self._model = None

    def _components(self, row: np.ndarray, z: float, log_u: float) -> dict:
        p = dict(zip(PARAMETERS, row))
        return {"redshift": float(z),
                "delayed": {"age": float(p["age_gyr"]), "tau": float(p["tau_gyr"]),
                            "massformed": float(p["log_mass_formed"]), "metallicity": float(p["metallicity"])},
                "nebular": {"logU": log_u}, "dust": {"type": "Calzetti", "Av": float(p["av"]), "eta": 1.0}}

    def __call__(self, theta: np.ndarray, z: np.ndarray, workdir: str | None = None) -> np.ndarray:
        pipes = import_bagpipes('amortized posteriors simulate with bagpipes, which is not installed: '
                                'pip install -e ".[fit,sbi]"')
        log_u = BaselinePrior.at(float(np.median(z))).log_u
        out = np.empty((len(theta), len(self.bands)))
        here = os.getcwd()
        try:
            if workdir:
                os.chdir(workdir)  # bagpipes writes its grids' cache where it runs
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                for i, (row, zz) in enumerate(zip(theta, z)):
                    components = self._components(row, zz, log_u)
                    if self._model is None:
                        self._model = pipes.model_galaxy(components, filt_list=self.curves, phot_units="mujy")
                    else:
                        self._model.update(components)
                    out[i] = np.asarray(self._model.photometry, dtype=float)
        finally:
            os.chdir(here)
        return out


def simulate_block(bands: tuple[str, ...], noise: dict, z_range: tuple[float, float], n: int,
                   seed: int) -> dict[str, np.ndarray]:
    """One block of simulations (a dask task): parameters, redshifts, noise-free and observed photometry."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(*z_range, n)
    theta = draw_parameters(z, rng)
    model = Simulator(bands)(theta, z)
    observed, err, present = NoiseModel.from_dict(noise).observe(model, rng)
    return {"theta": theta, "z": z, "model": model, "flux": observed, "err": err, "present": present}


def simulate(bands: tuple[str, ...], noise: NoiseModel, z_range: tuple[float, float], n: int, seed: int,
             workers: int = 1, block: int = 500, progress=None) -> dict[str, np.ndarray]:
    """``n`` simulations in blocks of ``block``, over ``workers`` processes (dask) when more than one.

    Each block has its own seed from ``seed``, so the result does not depend on the number of workers.
    """
    if not (z_range[0] >= 0 and z_range[1] > z_range[0] and math.isfinite(z_range[1])):
        raise InputError(f"redshift range {z_range}: give two increasing numbers, e.g. --z-range 3 10")
    sizes = [min(block, n - start) for start in range(0, n, block)]
    seeds = np.random.SeedSequence(seed).generate_state(len(sizes)).tolist()
    spec = noise.to_dict()
    parts: list[dict] = []
    if workers > 1 and len(sizes) > 1:
        from dask.distributed import Client, LocalCluster, as_completed

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            futures = [client.submit(simulate_block, bands, spec, z_range, size, s, pure=False)
                       for size, s in zip(sizes, seeds)]
            order = {f.key: i for i, f in enumerate(futures)}
            done: dict[int, dict] = {}
            for future in as_completed(futures):
                done[order[future.key]] = future.result()
                if progress is not None:
                    progress(sum(len(d["z"]) for d in done.values()), n)
            parts = [done[i] for i in range(len(futures))]
    else:
        for size, s in zip(sizes, seeds):
            parts.append(simulate_block(bands, spec, z_range, size, s))
            if progress is not None:
                progress(sum(len(p["z"]) for p in parts), n)
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
