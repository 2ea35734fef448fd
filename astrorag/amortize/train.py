"""Training an amortized posterior: simulations, the neural posterior estimator, the emulator, the
reference numbers inference needs, and a content-hashed artifact."""

from __future__ import annotations

import platform
import time
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from ..errors import InputError
from .model import (
    FORMAT,
    Artifact,
    ab_mag,
    build_emulator,
    config_key,
    emulator_inputs,
    features,
    need_sbi,
    network_size,
    standardisation,
)
from .simulator import PARAMETERS, NoiseModel, simulate, support, to_unbounded

#: Share of the simulations held out from training: the emulator's error and the out-of-distribution
#: reference are measured on them.
HOLDOUT_SHARE = 0.1


@dataclass(frozen=True)
class TrainOptions:
    """What a training run does; every field enters the artifact's hash."""

    bands: tuple[str, ...]
    n_sims: int = 20000
    seed: int = 0
    z_range: tuple[float, float] = (0.5, 10.0)
    model: str = "mdn"          # a mixture density network: 1,000 draws cost one forward pass (see train())
    hidden: int = 64
    components: int = 10        # mdn: Gaussian components; maf/nsf: the number of transforms
    emulator_hidden: int = 64
    max_epochs: int = 200
    emulator_epochs: int = 300

    def __post_init__(self):
        if self.n_sims < 50:
            raise InputError(f"--n-sims {self.n_sims}: train on at least 50 simulations (tens of thousands for use)")
        if len(self.bands) < 4:
            raise InputError(f"--bands names {len(self.bands)} band(s); five parameters need at least 4")


def _versions() -> dict[str, str]:
    out = {}
    for package in ("astrorag", "sbi", "torch", "bagpipes", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "absent"
    return out


def _train_emulator(torch, emulator, inputs: np.ndarray, mags: np.ndarray, epochs: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(inputs, dtype=torch.float32)
    y = torch.as_tensor(mags, dtype=torch.float32)
    emulator.in_mean.copy_(x.mean(0))
    emulator.in_std.copy_(x.std(0).clamp_min(1e-6))
    emulator.out_mean.copy_(y.mean(0))
    emulator.out_std.copy_(y.std(0).clamp_min(1e-6))
    optimiser = torch.optim.Adam(emulator.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    batch = min(512, len(x))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            optimiser.zero_grad()
            loss = torch.nn.functional.smooth_l1_loss(emulator(x[idx]), y[idx], beta=0.05)
            loss.backward()
            optimiser.step()
        schedule.step()
    emulator.eval()


def train(options: TrainOptions, noise: NoiseModel | None = None, workers: int = 1, progress=None) -> Artifact:
    """Simulate, train and return the artifact (not yet saved).

    The default estimator is a mixture density network (10 full-covariance Gaussians over the parameters'
    logits): its 1,000 draws per source cost one forward pass, where a masked autoregressive flow of the
    same width needs one pass per parameter and transform (measured on this 2-core machine: 0.3 against
    78 ms a source). Its calibration is measured, not assumed (`astrorag amortize calibrate`).

    ``progress(stage, done, total)`` is called as simulations and epochs finish.
    """
    torch = need_sbi()
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn

    noise = noise or NoiseModel.default(options.bands)
    torch.manual_seed(options.seed)
    config = {"format": FORMAT, "bands": list(options.bands), "n_sims": options.n_sims, "seed": options.seed,
              "z_range": list(options.z_range), "noise": noise.to_dict(), "parameters": list(PARAMETERS),
              "network": {"model": options.model, "hidden": options.hidden, "components": options.components,
                          "emulator_hidden": options.emulator_hidden, "max_epochs": options.max_epochs,
                          "emulator_epochs": options.emulator_epochs},
              "versions": _versions()}
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    sims = simulate(options.bands, noise, options.z_range, options.n_sims, options.seed, workers=workers,
                    progress=(lambda done, total: progress("simulations", done, total)) if progress else None)
    sim_wall = time.perf_counter() - t0
    n_hold = max(10, int(HOLDOUT_SHARE * options.n_sims))
    train_rows, hold_rows = np.arange(options.n_sims - n_hold), np.arange(options.n_sims - n_hold, options.n_sims)
    x_all = features(sims["flux"], sims["err"], sims["present"], sims["z"])
    theta_all = sims["theta"]
    builder = posterior_nn(model=options.model, hidden_features=options.hidden,
                           **network_size(options.model, options.components))
    inference = NPE(prior=None, density_estimator=builder, show_progress_bars=False)
    # the network learns the parameters' logits within the prior (to_unbounded): no draw can leave it
    lo, hi = support(options.z_range)
    unbounded = to_unbounded(theta_all, sims["z"], lo, hi)
    theta_train = torch.as_tensor(unbounded[train_rows], dtype=torch.float32)
    x_train = torch.as_tensor(x_all[train_rows], dtype=torch.float32)
    inference.append_simulations(theta_train, x_train)
    t1 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = inference.train(max_num_epochs=options.max_epochs, show_train_summary=False)
    # sbi warns when the epoch cap came before its early stop: recorded in the artifact, not printed
    converged = not any("not yet fully converged" in str(w.message) for w in caught)
    epochs = int(inference.epoch)
    estimator.eval()
    npe_wall = time.perf_counter() - t1
    if progress:
        progress("posterior network", 1, 1)
    # the emulator learns the noise-free magnitudes of the bands, from parameters and redshift
    t2 = time.perf_counter()
    emulator = build_emulator({"bands": list(options.bands), "config": config})
    inputs = emulator_inputs(theta_all, sims["z"])
    mags = ab_mag(sims["model"])
    _train_emulator(torch, emulator, inputs[train_rows], mags[train_rows], options.emulator_epochs, options.seed)
    with torch.no_grad():
        predicted = emulator(torch.as_tensor(inputs[hold_rows], dtype=torch.float32)).numpy()
    emulator_error = np.sqrt(np.mean((predicted - mags[hold_rows]) ** 2, axis=0))
    emu_wall = time.perf_counter() - t2
    if progress:
        progress("emulator", 1, 1)
    meta = {"format": FORMAT, "key": config_key(config), "config": config, "bands": list(options.bands),
            "noise": noise.to_dict(), "support": [lo.tolist(), hi.tolist()],
            "emulator_rms_mag": emulator_error.round(4).tolist(),
            "timing": {"simulations_s": round(sim_wall, 1), "simulations_per_s": round(options.n_sims / sim_wall, 1),
                       "posterior_network_s": round(npe_wall, 1), "emulator_s": round(emu_wall, 1),
                       "cpu_s": round(time.process_time() - cpu0, 1), "workers": workers,
                       "machine": platform.processor() or platform.machine()},
            "standardisation": standardisation(torch, theta_train, x_train),
            "holdout": {"rows": int(n_hold)}, "training": {"epochs": epochs, "converged": converged}}
    artifact = Artifact(meta, estimator, emulator)
    # the out-of-distribution reference: the goodness of fit of held-out simulations, as inference computes it
    from .infer import REFERENCE_DRAWS, posteriors

    reference = posteriors(artifact, sims["flux"][hold_rows], sims["err"][hold_rows], sims["present"][hold_rows],
                           sims["z"][hold_rows], draws=REFERENCE_DRAWS, seed=options.seed, with_reference=False)
    meta["ood_reference"] = np.quantile(reference["best_chi2_per_band"], np.linspace(0, 1, 101)).round(4).tolist()
    return artifact
