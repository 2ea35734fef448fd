"""Little red dots as the field now reads them: a black-hole-star component, rules on both sides with their
years, and verdicts that say whether they survive a second prior."""

import json
import tomllib
from importlib import resources

import numpy as np
import pytest
from test_fit import SeededEvidenceFitter, TwoComponentFitter

from astrorag.fit import bhstar, get_fitter
from astrorag.fit.loop import family_of, prior_check, run_loop, second_prior
from astrorag.fit.spec import apply_action, baseline
from astrorag.graph.model import RuleGraph
from astrorag.graph.papers import paper_label, paper_year
from astrorag.graph.types import Action
from astrorag.render.rules import rule_text
from astrorag.sed import synthetic as syn
from astrorag.settings import FitSettings


def test_the_bhstar_continuum_is_a_blackbody_with_a_gas_break_scaled_at_rest_5500():
    z = 6.0
    flat = np.linspace(0.5, 0.6, 200) * 1e4 * (1 + z)     # a narrow band around rest 5500 A
    uv = np.linspace(0.30, 0.34, 200) * 1e4 * (1 + z)     # blueward of the Balmer limit
    component = bhstar.BlackHoleStar(z, [(flat, np.ones_like(flat)), (uv, np.ones_like(uv))])
    no_lines = np.array([5000.0, 0.5, 0.0, 10.0])
    optical, blue = component.band_fluxes(no_lines, scale=2.0)
    assert optical == pytest.approx(0.5 * 2.0, rel=0.05)       # the share of the scale, at rest 5500 A
    broken = component.band_fluxes(np.array([5000.0, 0.5, 0.8, 10.0]), scale=2.0)
    assert broken[1] == pytest.approx(0.2 * blue, rel=1e-6) and broken[0] == pytest.approx(optical)
    # A cooler photosphere is redder.
    cool = component.band_fluxes(np.array([3000.0, 0.5, 0.0, 10.0]), scale=2.0)
    assert cool[1] / cool[0] < blue / optical
    # L_bol of a 5,000 K photosphere making 1e-20 erg/s/cm2/A at rest 5500 A at z = 6: ~1e10-1e11 L_sun.
    assert 9 < np.log10(component.luminosity_lsun(no_lines, 1e-20)) < 12


def test_the_bhstar_is_a_vocabulary_extension_cigale_refuses_by_name():
    from astrorag.fit.cigale import unwritable_modules

    spec, note = apply_action(baseline(5.4), Action("add_module", None, "bhstar"))
    assert note == "added bhstar" and family_of(spec) == "bhstar"
    assert spec.module("bhstar")["temperature"] == (2000.0, 9000.0)
    assert unwritable_modules(spec)[0].startswith("bhstar: CIGALE has no such module")
    assert second_prior(spec).value("bhstar", "f5500_share") == (0.01, 0.3)


@pytest.mark.slow
def test_bagpipes_fits_stars_plus_a_bhstar_and_reports_it_in_readable_units():
    """A real bagpipes fit of a bundled LRD with the BH* added (few live points): the posterior holds T_eff, the
    shares at rest 5500 A and 1500 A and L_bol, each with a 68 % interval inside its prior."""
    from astrorag.sed.photometry import read_photometry

    phot = read_photometry(resources.files("astrorag") / "data" / "kokorev2024_lrd_dev.csv", ids=["11219"])
    source = phot.source(0, error_floor=FitSettings.error_floor)
    spec, _ = apply_action(baseline(source.redshift), Action("add_module", None, "bhstar"))
    fit = get_fitter("bagpipes", n_live=40, n_eff=0, max_likelihood_calls=20000).fit(source, spec)
    post = fit.posterior
    for name in ("bhstar:temperature", "bhstar:f5500_share", "bhstar:balmer_break", "bhstar:halpha_ew",
                 "bhstar:uv_share", "bhstar:log_L_bol_lsun"):
        assert post[name]["p16"] <= post[name]["p50"] <= post[name]["p84"], name
    assert 2000 <= post["bhstar:temperature"]["p50"] <= 9000
    assert fit.priors["bhstar:f5500_share"] == (0.01, 1.5, "log")
    measured = np.isfinite(source.flux[0]) & (source.fit_err[0] > 0) & np.array([bool(c) for c in source.curves])
    assert np.all(np.isfinite(np.asarray(fit.model_ujy)[measured]))


class FamilyFitter(SeededEvidenceFitter):
    """ln Z set per (family, second prior?): the prior check's arithmetic on known numbers."""

    def __init__(self, ln_z: dict):
        super().__init__({})
        self.family_ln_z = ln_z

    def translate(self, spec):
        return (family_of(spec), spec.describe())

    def fit(self, phot, spec, workdir=None, replicate=0):
        result = TwoComponentFitter().fit(phot, spec)
        capped = spec == second_prior(spec) and family_of(spec) != "stars"
        result.fitter, result.log_evidence_err = self.name, 0.05
        result.log_evidence = self.family_ln_z[(family_of(spec), capped)] + 0.1 * replicate
        return result


@pytest.mark.parametrize("second, verdict", [(8.0, "robust to the prior"), (1.0, "prior-dependent")])
def test_a_kept_family_is_refitted_under_a_second_prior_and_the_verdict_says_whether_it_holds(second, verdict):
    source = syn.population("lrd", 1, seed=3).source(0, error_floor=FitSettings.error_floor)
    fitter = FamilyFitter({("stars", False): 100.0, ("stars", True): 100.0, ("agn", False): 110.0,
                           ("agn", True): 100.0, ("bhstar", False): 120.0, ("bhstar", True): 100.0 + second})
    graph = RuleGraph.from_seeds()
    start = baseline(source.redshift)
    path = run_loop(source, graph, fitter, steps=2, width=3, start=start)
    if family_of(path.final.spec) != "bhstar":
        pytest.skip("the seed rules did not offer the BH* for this synthetic source")
    check = path.prior_check
    assert check["winner"] == "bhstar" and check["verdict"] == verdict
    assert check["ln_z_gain_second_prior"] == pytest.approx(second, abs=10.0)
    data = path.to_dict()
    assert data["prior_check"]["verdict"] == verdict and verdict in data["verdict"]


def test_prior_check_compares_a_bhstar_with_the_dusty_agn_even_when_the_run_never_fitted_one():
    source = syn.population("lrd", 1, seed=3).source(0, error_floor=FitSettings.error_floor)
    fitter = FamilyFitter({("stars", False): 100.0, ("agn", False): 105.0, ("agn", True): 101.0,
                           ("bhstar", False): 112.0, ("bhstar", True): 109.0})
    from astrorag.fit.loop import FitPath, FitStep, _Runner

    base = fitter.fit(source, baseline(source.redshift))
    winner = fitter.fit(source, apply_action(base.spec, Action("add_module", None, "bhstar"))[0])
    first = FitStep.from_fit(0, None, "baseline", base, ["v_shaped_sed", "strong_balmer_break"])
    path = FitPath(source.source_id, fitter.name, "log_evidence", [first], winner, base, [], fits=[base, winner])
    runner = _Runner(fitter, source, 1, None)
    check = prior_check(runner, path, lambda _m: None)
    assert check["rival"] == "agn" and check["ln_z_gain_vs_dusty_agn"] == pytest.approx(7.0)
    assert check["ln_z_gain_second_prior"] == pytest.approx(8.0) and check["verdict"] == "robust to the prior"


def test_every_paper_a_seed_rule_cites_has_its_year_and_the_bhstar_rules_cite_both_sides():
    rules = tomllib.loads((resources.files("astrorag") / "data" / "seed_rules.toml").read_text())["rule"]
    for raw in rules:
        for ident in (*raw["citations"], *raw.get("contradicted_by", ())):
            assert paper_year(ident), (raw["id"], ident)
    graph = RuleGraph.from_seeds()
    bh = graph.get("lrd-bhstar-beside-stars")
    assert bh.contested and "2606.12355" in bh.contradicted_by and "2503.16596" in bh.citations
    text = rule_text(bh)
    assert "2503.16596 (Naidu et al. 2025)" in text and "2606.12355 (Merida et al. 2026)" in text
    # The dusty-AGN and old-stars LRD readings are contested by the BH* papers.
    bh_papers = {"2503.16596", "2503.16600", "2511.21820", "2601.20929", "2503.02059"}
    for rule_id in ("lrd-reddened-agn", "lrd-agn-red-continuum", "lrd-optical-deficit-agn", "sfh-balmer-older"):
        assert set(graph.get(rule_id).contradicted_by) & bh_papers, rule_id
    assert graph.get("lrd-dense-gas").superseded_by.startswith("lrd-bhstar-beside-stars")
    assert paper_label("2601.20929") == "Sun et al. 2026"


def test_rules_list_contested_shows_the_bhstar_side(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "astrorag", "rules", "list", "--contested"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "lrd-agn-red-continuum" in run.stdout and "lrd-bhstar-beside-stars" in run.stdout
    shown = subprocess.run([sys.executable, "-m", "astrorag", "rules", "show", "lrd-bhstar-agn-dust-cap"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert "2503.02059 (Setton et al. 2025)" in shown.stdout and "2509.07100 (Delvecchio et al. 2025)" in shown.stdout
    data = json.loads(subprocess.run([sys.executable, "-m", "astrorag", "rules", "list", "--json"],
                                     capture_output=True, text=True, env=env, timeout=120).stdout)
    bh = next(r for r in data if r["rule_id"] == "lrd-bhstar-beside-stars")
    assert bh["paper_years"]["2511.21820"] == 2025
