"""Cost of amortized posteriors: CPU milliseconds per source for the draws and the goodness of fit, the
training's own cost, and the projection to a survey of 1e9 sources beside an LLM agent's."""

from __future__ import annotations

import os
import time

import numpy as np

from ..hardware import cpu_info
from ..settings import Settings

#: AstroMLab's Mephisto agent: about USD 1 (GPT-4o) or 15 GPU-minutes per source (the project's seed figure).
AGENT_USD_PER_SOURCE, AGENT_GPU_MINUTES_PER_SOURCE = 1.0, 15.0
SURVEY_SOURCES = 1e9


def run_amortize_bench(settings: Settings, model: str, n: int = 2000, draws: int = 1000, seed: int = 7,
                       threads: int | None = None) -> dict:
    """Time :func:`~astrorag.amortize.infer.posteriors` on ``n`` fresh simulations in one batch run.

    CPU time is the process's (all its threads), so the figure holds however loaded the machine is; wall
    time is beside it with the threads used.
    """
    from ..amortize.infer import posteriors
    from ..amortize.model import Artifact, need_sbi
    from ..amortize.simulator import simulate
    from ..workflows.amortize import find_model

    torch = need_sbi()
    if threads:
        torch.set_num_threads(threads)
    artifact = Artifact.load(find_model(settings, model))
    sims = simulate(artifact.bands, artifact.noise, tuple(artifact.meta["config"]["z_range"]), n, seed)
    posteriors(artifact, sims["flux"][:50], sims["err"][:50], sims["present"][:50], sims["z"][:50], draws=draws)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = posteriors(artifact, sims["flux"], sims["err"], sims["present"], sims["z"], draws=draws, seed=seed)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    cpu_ms = cpu / n * 1e3
    timing = artifact.meta["timing"]
    cpu_hours = SURVEY_SOURCES * cpu_ms / 1e3 / 3600
    return {
        **cpu_info(), "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "model": artifact.key, "bands": list(artifact.bands), "sources": n, "draws": draws,
        "inference_cpu_ms_per_source": round(cpu_ms, 3), "inference_wall_ms_per_source": round(wall / n * 1e3, 3),
        "leakage_median": round(float(np.nanmedian(out["leakage"])), 4),
        "training": {"simulations": artifact.meta["config"]["n_sims"],
                     "simulations_per_s": timing["simulations_per_s"], "simulation_workers": timing["workers"],
                     "posterior_network_s": timing["posterior_network_s"], "emulator_s": timing["emulator_s"],
                     "training_cpu_s": timing["cpu_s"], "epochs": artifact.meta.get("training", {}).get("epochs"),
                     "converged": artifact.meta.get("training", {}).get("converged")},
        "projection_1e9_sources": {
            "amortized_cpu_hours": round(cpu_hours, 1),
            "amortized_cpu_core_years": round(cpu_hours / 24 / 365, 2),
            "agent_gpu_hours": SURVEY_SOURCES * AGENT_GPU_MINUTES_PER_SOURCE / 60,
            "agent_usd": SURVEY_SOURCES * AGENT_USD_PER_SOURCE,
            "note": "the agent's figures are AstroMLab's per-source cost (USD 1 with GPT-4o, or 15 GPU-minutes); the "
                    "amortized figure is CPU time on this machine, training excluded (once per band set)"},
    }
