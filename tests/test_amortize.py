"""Amortized posteriors: the plumbing, on a tiny model (a few hundred simulations, a few epochs).

Calibration is measured by `astrorag amortize calibrate` on a real model (eval/README.md), not here.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sbi")
pytest.importorskip("bagpipes")

from astrorag.errors import InputError
from astrorag.settings import Settings

BANDS = ("f090w", "f115w", "f150w", "f200w", "f277w", "f356w", "f410m", "f444w")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from astrorag.workflows.amortize import train_model

    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"), progress=False)
    artifact = train_model(settings, BANDS, n_sims=300, seed=3, z_range=(4.0, 9.0), quick=True)
    return settings, artifact


def test_training_writes_a_content_hashed_artifact_that_loads_as_it_was(tiny):
    import torch

    from astrorag.amortize.model import Artifact, config_key, features
    from astrorag.amortize.simulator import NoiseModel, simulate

    settings, artifact = tiny
    assert artifact.path.parent == settings.storage.cache_dir / "amortized"
    assert artifact.path.name == artifact.key == config_key(artifact.meta["config"])
    config = artifact.meta["config"]
    assert config["bands"] == list(BANDS) and config["seed"] == 3 and config["n_sims"] == 300
    assert {"sbi", "torch", "bagpipes"} <= set(config["versions"])
    loaded = Artifact.load(artifact.path)
    sims = simulate(BANDS, NoiseModel.default(BANDS), (4.0, 9.0), 8, seed=11)
    x = torch.as_tensor(features(sims["flux"], sims["err"], sims["present"], sims["z"]), dtype=torch.float32)
    theta = torch.as_tensor(sims["theta"], dtype=torch.float32)
    with torch.no_grad():  # the same density before and after the round trip
        assert torch.allclose(artifact.posterior.log_prob(theta[None], condition=x),
                              loaded.posterior.log_prob(theta[None], condition=x), atol=1e-4)
    # a different training configuration is a different artifact
    other = dict(config, seed=4)
    assert config_key(other) != artifact.key
    # a folder whose configuration was edited is not believed
    meta = json.loads((artifact.path / "meta.json").read_text())
    meta["config"]["bands"] = list(BANDS[:-1])
    forged = artifact.path.parent / "forged" / artifact.key
    forged.mkdir(parents=True)
    (forged / "meta.json").write_text(json.dumps(meta))
    (forged / "weights.pt").write_bytes((artifact.path / "weights.pt").read_bytes())
    with pytest.raises(InputError, match="does not hash to its name"):
        Artifact.load(forged)


def test_posteriors_with_missing_bands_and_the_goodness_of_fit(tiny):
    from astrorag.amortize.infer import posteriors
    from astrorag.amortize.simulator import NoiseModel, simulate

    _, artifact = tiny
    sims = simulate(BANDS, NoiseModel.default(BANDS), (4.0, 9.0), 40, seed=12)
    present = sims["present"].copy()
    present[:20, [0, 3, 6]] = False                      # three bands gone in half the rows
    out = posteriors(artifact, sims["flux"], sims["err"], present, sims["z"], draws=200)
    assert np.all(out["n_bands"][:20] <= 5)
    for key in ("log_mass_formed_p50", "ppc_pvalue", "best_chi2_per_band", "leakage"):
        assert out[key].shape == (40,)
    ok = np.isfinite(out["log_mass_formed_p50"])
    assert ok[:20].any() and ok[20:].any()                # rows with gaps get posteriors too
    assert np.all(out["log_mass_formed_p16"][ok] <= out["log_mass_formed_p50"][ok])
    assert np.all(out["log_mass_formed_p50"][ok] <= out["log_mass_formed_p84"][ok])
    assert np.all((out["ppc_pvalue"][ok] >= 0) & (out["ppc_pvalue"][ok] <= 1))
    assert set(np.unique(out["unexplained"][ok])) <= {0.0, 1.0}
    # a source no baseline galaxy makes: one band 100x too bright is unexplained, and that band is named
    odd_flux = sims["flux"][20:].copy()
    odd_flux[:, 5] = np.abs(odd_flux[:, 5]) * 100 + 50 * sims["err"][20:, 5]
    odd = posteriors(artifact, odd_flux, sims["err"][20:], sims["present"][20:] | True, sims["z"][20:], draws=200)
    judged = np.isfinite(odd["ppc_pvalue"])
    assert judged.sum() >= 10 and np.mean(odd["unexplained"][judged] == 1) >= 0.9
    assert np.mean(["f356w" in bands for bands in odd["failing_bands"][judged]]) >= 0.9
    assert np.nanmedian(odd["ood_score"]) > np.nanmedian(out["ood_score"])


def test_a_catalog_without_the_models_bands_is_refused_with_what_to_do(tiny):
    _, artifact = tiny
    with pytest.raises(InputError, match=r"has no f410m.*amortize train"):
        artifact.check_bands(tuple(b for b in BANDS if b != "f410m") + ("f606w",))
    assert artifact.check_bands(("f606w",) + BANDS) == list(range(1, 9))


def test_advise_catalog_with_posteriors_writes_them_per_source(tiny, tmp_path):
    settings, artifact = tiny
    from astrorag.workflows import LRD_EXAMPLES

    out = tmp_path / "advice.csv"
    env = dict(os.environ, XDG_CACHE_HOME="", ASTRORAG_CACHE_DIR=str(settings.storage.cache_dir))
    run = subprocess.run([sys.executable, "-m", "astrorag", "advise-catalog", str(LRD_EXAMPLES), "--out", str(out),
                          "--posteriors", artifact.key[:10], "--quiet"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "unexplained by the baseline" in run.stdout
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60
    assert {"post_log_mass_formed_p50", "post_log_sfr_p16", "post_av_p84", "ppc_pvalue", "ood_score", "unexplained",
            "failing_bands"} <= set(rows[0])
    # the rules advise only where the baseline cannot explain the source
    assert all(r["top_rule"] == "" for r in rows if r["unexplained"] in ("0.0", "0"))
    # an unknown model is a one-line error naming what exists
    bad = subprocess.run([sys.executable, "-m", "astrorag", "advise-catalog", str(LRD_EXAMPLES), "--out",
                          str(tmp_path / "x.csv"), "--posteriors", "nosuchmodel"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert bad.returncode != 0 and "amortize list" in bad.stderr and "Traceback" not in bad.stderr


def test_the_sbi_extra_is_named_when_missing(monkeypatch):
    import builtins

    from astrorag.amortize.model import need_sbi

    real_import = builtins.__import__

    def no_sbi(name, *args, **kwargs):
        if name == "sbi" or name.startswith("sbi."):
            raise ImportError("No module named 'sbi'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sbi)
    with pytest.raises(InputError, match=r'pip install -e "\.\[sbi\]"'):
        need_sbi()
