"""The trained pieces of an amortized posterior and the artifact that holds them.

- the **posterior estimator**: a neural posterior estimator (``sbi``'s masked autoregressive flow) of the
  baseline's parameters given the features of one source's photometry;
- the **emulator**: a small network from parameters and redshift to the noise-free magnitudes, trained on
  the same simulations, so that a goodness of fit over 1,000 posterior draws costs a matrix product rather
  than 1,000 bagpipes calls; its own error, measured on held-out simulations, is added to the noise;
- the **out-of-distribution reference**: how far held-out simulations sit from their best draw, to tell
  where a real source leaves what the simulator makes.

An artifact is a folder named by the content hash of its training configuration (bands, noise model,
redshift range, simulations, seed, package versions): ``meta.json`` and ``weights.pt`` (tensors only,
loaded with ``weights_only=True``: a planted file cannot run code).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .simulator import PARAMETERS, NoiseModel

#: Artifact format; a change refuses older artifacts with a message to retrain.
FORMAT = 2
#: Softening of the asinh magnitudes: fluxes near zero or negative stay finite (Lupton et al. 1999).
ZERO_POINT_UJY = 3631e6


def need_sbi():
    """``sbi`` and ``torch``, or an error naming the extra."""
    try:
        import sbi  # noqa: F401
        import torch
    except ImportError as exc:
        raise InputError('amortized posteriors need the sbi extra: pip install -e ".[sbi]" (sbi and torch)') from exc
    return torch


def asinh_mag(flux: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Lupton's asinh magnitude of ``flux`` (uJy) softened at ``soft`` (uJy): the AB magnitude where
    flux >> soft, finite through zero and negative fluxes.

    >>> round(float(asinh_mag(np.array([1.0]), np.array([0.001]))[0]), 3)
    23.9
    """
    b = np.asarray(soft, dtype=float) / ZERO_POINT_UJY
    return -2.5 / math.log(10) * (np.arcsinh(np.asarray(flux, dtype=float) / ZERO_POINT_UJY / (2 * b)) + np.log(b))


def features(flux: np.ndarray, err: np.ndarray, present: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(N, 3B + 1) network inputs: per band the asinh magnitude (softened at its error), log10 error and a
    present flag (0 and 0 where the band is missing), then the redshift."""
    present = present & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    safe_err = np.where(present, err, 1.0)
    mag = np.where(present, asinh_mag(np.where(present, flux, 0.0), safe_err), 0.0)
    log_err = np.where(present, np.log10(safe_err), 0.0)
    return np.column_stack([mag, log_err, present.astype(float), np.asarray(z, dtype=float)[:, None]])


@dataclass
class Artifact:
    """A trained amortized posterior: its configuration, the networks and what calibration it carries."""

    meta: dict
    posterior: object      # the sbi density estimator (a torch module)
    emulator: object       # torch module: (theta, z) -> magnitudes
    path: Path | None = None

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.meta["bands"])

    @property
    def key(self) -> str:
        return self.meta["key"]

    @property
    def noise(self) -> NoiseModel:
        return NoiseModel.from_dict(self.meta["noise"])

    def check_bands(self, catalog_bands: tuple[str, ...]) -> list[int]:
        """Each artifact band's column in the catalog; a band the catalog lacks is an error that says what
        to do (a catalog band the artifact lacks is left out, with the artifact's own bands listed)."""
        lookup = {b: i for i, b in enumerate(catalog_bands)}
        missing = [b for b in self.bands if b not in lookup]
        if missing:
            raise InputError(f"the amortized model {self.key[:12]} was trained on {', '.join(self.bands)}; the catalog "
                             f"has no {', '.join(missing)}. Train one for this catalog: astrorag amortize train "
                             f"--bands {','.join(b for b in self.bands if b in lookup) or '...'} (its rows may "
                             "still have gaps: missing values are handled per row)")
        return [lookup[b] for b in self.bands]

    def save(self, root: Path) -> Path:
        torch = need_sbi()
        folder = Path(root) / self.key
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "weights.pt.tmp"
        torch.save({"posterior": self.posterior.state_dict(), "emulator": self.emulator.state_dict()}, tmp)
        tmp.replace(folder / "weights.pt")
        (folder / "meta.json").write_text(json.dumps(self.meta, indent=1, sort_keys=True))
        self.path = folder
        return folder

    @classmethod
    def load(cls, folder: Path) -> Artifact:
        torch = need_sbi()
        folder = Path(folder)
        meta_file, weights = folder / "meta.json", folder / "weights.pt"
        if not meta_file.is_file() or not weights.is_file():
            raise InputError(f"{folder} is not an amortized model (no meta.json and weights.pt there); train one with "
                             "`astrorag amortize train --bands ...`, or give the folder it printed")
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{meta_file} is damaged ({exc}); train again with `astrorag amortize train`") from exc
        if meta.get("format") != FORMAT:
            raise InputError(f"{folder} was written in format {meta.get('format')} (this astrorag reads {FORMAT}): "
                             "train again with `astrorag amortize train`")
        if "standardisation" not in meta:
            raise InputError(f"{folder} was written before models kept their training statistics: train again with "
                             "`astrorag amortize train`")
        if config_key(meta["config"]) != meta.get("key") or folder.name != meta.get("key"):
            raise InputError(f"{folder}: its configuration does not hash to its name, so it is not the model it says; "
                             "train again with `astrorag amortize train`")
        state = torch.load(weights, weights_only=True)
        posterior = build_posterior_net(meta)
        posterior.load_state_dict(state["posterior"])
        emulator = build_emulator(meta)
        emulator.load_state_dict(state["emulator"])
        posterior.eval()
        emulator.eval()
        return cls(meta, posterior, emulator, folder)


def config_key(config: dict) -> str:
    """The content hash of a training configuration (what names the artifact)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:24]


def build_posterior_net(meta: dict):
    """The flow with the artifact's shapes (its z-scoring buffers come with the state dict)."""
    torch = need_sbi()
    from sbi.neural_nets import posterior_nn

    net = meta["config"]["network"]
    builder = posterior_nn(model=net["model"], hidden_features=net["hidden"],
                           **network_size(net["model"], net["components"]))
    stats = meta["standardisation"]
    return builder(_two_rows(torch, stats["theta_mean"], stats["theta_std"]),
                   _two_rows(torch, stats["x_mean"], stats["x_std"]))


def network_size(model: str, components: int) -> dict[str, int]:
    """The builder's size argument: Gaussian components for a mixture density network, else transforms."""
    return {"num_components": components} if model == "mdn" else {"num_transforms": components}


def _two_rows(torch, mean: list[float], std: list[float]):
    """Two rows whose mean and (unbiased) standard deviation are ``mean`` and ``std``: the network's builder
    sets its standardising layers from the batch it is given, and not every one of them is restored by
    ``load_state_dict``, so the batch must carry the training data's own statistics."""
    m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    return torch.stack([m - s / 2 ** 0.5, m + s / 2 ** 0.5])


def standardisation(torch, theta, x) -> dict[str, list[float]]:
    """The training batch's statistics, as the builder computes them (mean, unbiased std)."""
    return {"theta_mean": theta.mean(0).tolist(), "theta_std": theta.std(0).tolist(),
            "x_mean": x.mean(0).tolist(), "x_std": x.std(0).tolist()}


def build_emulator(meta: dict):
    """The emulator network for an artifact's bands: a plain MLP on standardised inputs and outputs (its
    statistics are buffers, so ``load_state_dict`` restores them)."""
    n_in, n_out = len(PARAMETERS) + 1, len(meta["bands"])
    hidden = meta["config"]["network"]["emulator_hidden"]
    torch = need_sbi()
    nn = torch.nn

    class Emulator(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("in_mean", torch.zeros(n_in))
            self.register_buffer("in_std", torch.ones(n_in))
            self.register_buffer("out_mean", torch.zeros(n_out))
            self.register_buffer("out_std", torch.ones(n_out))
            self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out))

        def forward(self, inputs):
            return self.net((inputs - self.in_mean) / self.in_std) * self.out_std + self.out_mean

    return Emulator()


def emulator_inputs(theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(N, P + 1): the parameters with log10 of age and tau (their effect is logarithmic), and z."""
    out = np.array(theta, dtype=float, copy=True)
    for name in ("age_gyr", "tau_gyr"):
        j = PARAMETERS.index(name)
        out[:, j] = np.log10(out[:, j])
    return np.column_stack([out, np.asarray(z, dtype=float)])


def ab_mag(flux: np.ndarray) -> np.ndarray:
    """AB magnitude of a positive flux in uJy (the emulator's output; the model never goes negative)."""
    return 23.9 - 2.5 * np.log10(np.clip(flux, 1e-30, None))
