"""The fitting loop: model specification, actions as transforms, translation, the loop, bagpipes itself."""

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from astrorag.errors import ConfigError
from astrorag.fit import FitResult, Fitter, get_fitter, source_photometry
from astrorag.fit.base import chi2_of
from astrorag.fit.bagpipes_fitter import to_bagpipes
from astrorag.fit.loop import MIN_DELTA_BIC, run_loop
from astrorag.fit.spec import NotAModelChange, apply_action, baseline, cosmic_age_myr, parse_range
from astrorag.graph.learn import learn, read_fitlog
from astrorag.graph.model import RuleGraph
from astrorag.sed import synthetic as syn
from astrorag.types import Action

LRD_TABLE = __import__("pathlib").Path(__file__).parent.parent / "astrorag" / "data" / "kokorev2024_lrd_dev.csv"


def test_actions_are_pure_transformations_of_the_model():
    spec = baseline(5.43)
    new, note = apply_action(spec, Action("increase", "E_BV_lines", "dustatt_modified_starburst", "0.3 - 1.5 mag"))
    assert new.value("dustatt_modified_starburst", "E_BV_lines") == (0.3, 1.5)
    assert spec.value("dustatt_modified_starburst", "E_BV_lines") == (0.0, 0.5)  # untouched
    assert "0-0.5 -> 0.3-1.5" in note
    # A parameter of a module the model lacks brings the module, with the action's companions applied.
    agn, _ = apply_action(spec, Action("increase", "fracAGN", "skirtor2016", "0.5 - 0.99 of the rest-optical light",
                                       also=(("lambda_fracAGN", "0.4/0.7"), ("EBV", "0.1 - 0.5"))))
    assert agn.member("agn") == "skirtor2016"
    assert agn.module("skirtor2016")["fracAGN"] == (0.5, 0.99)
    assert agn.module("skirtor2016")["lambda_fracAGN"] == "0.4/0.7" and agn.module("skirtor2016")["EBV"] == (0.1, 0.5)
    # A switch replaces the family member; ranges never pass the physical bounds or the cosmic age.
    cf00, note = apply_action(spec, Action("switch_module", None, "dustatt_modified_CF00"))
    assert cf00.member("attenuation") == "dustatt_modified_CF00" and not cf00.has("dustatt_modified_starburst")
    older, _ = apply_action(spec, Action("increase", "age_main", "sfhdelayed", "300 - 3000 Myr"))
    assert older.value("sfhdelayed", "age_main")[1] <= cosmic_age_myr(5.43)
    burst, _ = apply_action(spec, Action("increase", "f_burst", "sfhdelayed", "0.01 - 0.2, with age_burst 10 - 50 Myr"))
    assert burst.module("sfhdelayed")["f_burst"] == (0.01, 0.2) and burst.module("sfhdelayed")["age_burst"] == (10.0, 50.0)


def test_checks_and_redshift_changes_are_not_model_changes():
    spec = baseline(2.0)
    with pytest.raises(NotAModelChange, match="not a model change"):
        apply_action(spec, Action("check", "age_main", "sfhdelayed"))
    with pytest.raises(NotAModelChange, match="redshift"):
        apply_action(spec, Action("fix", "redshift", "redshifting", "a spectroscopic redshift"))
    with pytest.raises(NotAModelChange, match="already in the model"):
        apply_action(spec, Action("add_module", None, "nebular"))
    assert parse_range("-0.1 - +0.3 (greyer than Calzetti)") == (-0.1, 0.3)
    assert parse_range("0.3 mag (e.g. from 0.5)") == 0.3
    # Only the leading clause: the numbers after "while" belong to another parameter.
    lines, _ = apply_action(spec, Action("decrease", "E_BV_lines", "dustatt_modified_starburst",
                                         "0.3 mag (e.g. from 0.5), while E_BV_factor rises from 0.44 to 0.73"))
    assert lines.value("dustatt_modified_starburst", "E_BV_lines") == (0.0, 0.3)


def test_every_seed_rule_either_changes_the_model_or_says_why_not():
    spec = baseline(5.0)
    changed = refused = 0
    for rule in RuleGraph.from_seeds().rules():
        try:
            new, note = apply_action(spec, rule.action)
        except NotAModelChange as exc:
            assert str(exc)
            refused += 1
            continue
        assert note and (new != spec or rule.action.direction == "fix"), rule.rule_id
        a = rule.action
        if a.direction in ("increase", "decrease") and a.parameter and new.has(a.module or "") and spec.has(a.module or ""):
            before, after = spec.module(a.module).get(a.parameter), new.value(a.module, a.parameter)
            if isinstance(before, tuple) and isinstance(after, tuple):
                # a decrease never moves both ends up, an increase never both down (the rule's words decide)
                moved_up = after[0] > before[0] and after[1] > before[1]
                moved_down = after[0] < before[0] and after[1] < before[1]
                assert not (moved_up if a.direction == "decrease" else moved_down), (rule.rule_id, before, after)
        changed += 1
    assert changed >= 30 and refused >= 8


def test_bagpipes_translation_follows_the_table_and_names_what_it_cannot_build():
    spec = baseline(5.43)
    out, lost = to_bagpipes(spec)
    assert out["dust"] == {"type": "Calzetti", "Av": (0.0, 0.891), "eta": 2.2727}  # 4.05 x 0.44 x 0.5, 1/0.44
    assert out["delayed"]["age"][1] == pytest.approx(cosmic_age_myr(5.43) * 0.98e-3, rel=1e-3)
    assert out["delayed"]["metallicity"] == (0.1, 1.5)  # Z 0.002-0.03 over Z_sun 0.02
    steeper, _ = apply_action(spec, Action("decrease", "powerlaw_slope", "dustatt_modified_starburst", "-0.5 - -0.2"))
    assert to_bagpipes(steeper)[0]["dust"]["type"] == "Salim"
    assert to_bagpipes(steeper)[0]["dust"]["delta"] == (-0.5, -0.2)
    agn, _ = apply_action(spec, Action("increase", "EBV", "skirtor2016", "0.1 - 0.5"))
    out, lost = to_bagpipes(agn)
    assert out["agn_dust"] == {"type": "SMC", "Av": (0.274, 1.37)}
    assert any("torus" in item for item in lost) and any("fracAGN" in item for item in lost)
    assert out["agn"]["f5100A"] == (0.01, 0.9) and out["agn"]["alphalam"] == -1.56
    faded = RuleGraph.from_seeds().get("sfh-faded-burst")   # weak lines: a burst 10-50 Myr old, whose lines are off
    burst = to_bagpipes(apply_action(spec, faded.action)[0])[0]["burst"]
    assert burst["age"] == (0.01, 0.05) and burst["massformed"] == (4.0, 13.0)
    xray, _ = apply_action(spec, Action("increase", "max_dev_alpha_ox", "xray", "e.g. 1.0 or more"))
    assert to_bagpipes(xray)[0] == to_bagpipes(spec)[0]
    assert "xray: not representable in bagpipes" in to_bagpipes(xray)[1]


def test_unknown_fitter_lists_the_valid_names():
    with pytest.raises(ConfigError, match="valid names: bagpipes, cigale"):
        get_fitter("prospector")


class TwoComponentFitter(Fitter):
    """A least-squares fitter with two fixed shapes: blue stars, and a red power law when the model has an AGN.

    It is a real (linear) fit with no evidence, so the loop must use BIC; its translation ignores everything
    but the AGN switch, so other actions are "not representable" to it.
    """

    name = "two-component"

    def translate(self, spec):
        return ("stars", "agn") if spec.member("agn") else ("stars",)

    def fit(self, phot, spec, workdir=None):
        lam = np.asarray(phot.pivots_um) / (1 + phot.redshift)
        shapes = [lam ** 0.0]  # f_nu flat: beta_UV = -2
        if spec.member("agn"):
            shapes.append(np.clip(lam / 0.5, 0, None) ** 3.0)  # red rest-optical continuum
        f, e = np.asarray(phot.flux_ujy), np.asarray(phot.error_ujy)
        use = np.isfinite(f) & np.isfinite(e) & (e > 0)
        design = np.stack([s[use] / e[use] for s in shapes], axis=1)
        coef, *_ = np.linalg.lstsq(design, f[use] / e[use], rcond=None)
        model = np.sum([c * s for c, s in zip(coef, shapes)], axis=0)
        chi2, n = chi2_of(phot, model)
        return FitResult(self.name, spec, model.tolist(), chi2, n, len(shapes), None, 0.01)


def test_the_loop_keeps_a_change_only_when_bic_says_so_and_writes_learnable_records(tmp_path):
    phot = syn.population("lrd", 1, seed=3)
    source = source_photometry(phot, 0)
    graph = RuleGraph.from_seeds()
    path = run_loop(phot, graph, TwoComponentFitter(), source, steps=3, width=2)
    steps = path.to_dict()["steps"]
    assert steps[0]["change"] == "baseline" and steps[0]["action"] is None and path.criterion == "bic"
    kept = [s for s in steps[1:] if s["accepted"]]
    assert len(kept) == 1 and kept[0]["delta"] >= MIN_DELTA_BIC and kept[0]["chi2"] < steps[0]["chi2"]
    assert path.final_model.member("agn") is not None
    # Actions this fitter cannot build are skipped with a reason, not fitted.
    assert any("not representable in two-component" in s["why"] for s in path.skipped)
    # After the AGN is in, no other action changes this fitter's model: the loop stops on its own.
    assert len({s["step"] for s in steps}) == 2
    log = tmp_path / "fits.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in path.records))
    outcomes, problems = read_fitlog(log)
    assert not problems and len(outcomes) == len(path.records) and any(o.success for o in outcomes)
    report = learn(graph, outcomes)
    assert report.rules_updated >= 1


def test_a_failing_source_does_not_stop_the_others(tmp_path):
    from astrorag.settings import Settings
    from astrorag.workflows import fit_sources

    phot = syn.population("lrd", 2, seed=4)
    flux = phot.flux.copy()
    flux[1] = np.nan  # no detections at all
    runs = fit_sources(Settings(index_dir=tmp_path), replace(phot, flux=flux), fitter="bagpipes", n_live=20, steps=0)
    assert runs[1].path is None and "detected band" in runs[1].error
    assert runs[0].path is not None or "bagpipes" in runs[0].error


bagpipes = pytest.importorskip("bagpipes", reason="the fit extra is not installed: pip install -e '.[fit]'")


def test_bagpipes_fits_a_source_it_generated_and_the_cli_prints_the_path(tmp_path):
    from astrorag.evaluation.fit_eval import BANDS, synthesise

    phot, source = synthesise("hidden_agn", seed=7)
    result = get_fitter("bagpipes", n_live=30).fit(source, baseline(source.redshift))
    assert np.isfinite(result.log_evidence) and result.n_free == 5
    assert result.chi2 == pytest.approx(chi2_of(source, np.asarray(result.model_ujy))[0])
    assert "delayed:massformed" in result.posterior and 4 < result.posterior["delayed:massformed"]["p50"] < 13
    bright = np.asarray(source.flux_ujy) > 10 * np.asarray(source.error_ujy)
    assert np.all(np.asarray(result.model_ujy)[bright] > 0)
    # The CLI on a CSV of the same source: the baseline first, one refit, records that rules learn reads.
    table = tmp_path / "phot.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "z", *[c for b in BANDS for c in (f"{b}_flux", f"{b}_fluxerr")]])
        writer.writerow([source.source_id, source.redshift,
                         *[v for f, e in zip(phot.flux[0], phot.err[0]) for v in (f, e)]])
    records = tmp_path / "records.jsonl"
    run = subprocess.run([sys.executable, "-m", "astrorag", "fit", str(table), "--id", source.source_id, "--json",
                          "--steps", "1", "--width", "1", "--n-live", "30", "--records", str(records)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env=dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx")))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["steps"][0]["change"] == "baseline" and data["criterion"] == "log_evidence"
    assert len(data["steps"]) == 2 and {"chi2", "log_evidence", "accepted", "delta"} <= set(data["steps"][1])
    assert data["steps"][1]["action"]["rule_id"]
    outcomes, problems = read_fitlog(records)
    assert len(outcomes) == 1 and not problems
    assert not (tmp_path / "pipes").exists()  # bagpipes' files go to a folder of their own


def test_cigale_files_follow_cigales_format_and_say_why(tmp_path):
    from astrorag.fit.cigale import CigaleFitter, write_ini
    from astrorag.fit import FitError

    phot = syn.population("lrd", 1, seed=5)
    source = source_photometry(phot, 0)
    spec, _ = apply_action(baseline(source.redshift), Action("increase", "EBV", "skirtor2016", "0.1 - 0.5"))
    ini, data = write_ini(spec, source, tmp_path, {"skirtor2016": "rule lrd-agn-red-continuum (2306.07320)",
                                                   "skirtor2016.EBV": "polar dust on the disc light"})
    text = ini.read_text()
    assert "sed_modules = sfhdelayed, bc03, nebular, dustatt_modified_starburst, skirtor2016, redshifting" in text
    assert "[sed_modules_params]" in text and "[analysis_params]" in text and "  [[skirtor2016]]" in text
    assert "    EBV = 0.1, 0.2, 0.3, 0.4, 0.5" in text and "    imf = 1" in text
    assert "# astrorag: rule lrd-agn-red-continuum (2306.07320)" in text
    assert "    # astrorag: polar dust on the disc light\n    EBV" in text
    # Every parameter CIGALE's skirtor2016 module needs is stated.
    from astrorag.graph.vocabulary import MODULES
    section = text.split("[[skirtor2016]]")[1].split("[[")[0]
    assert all(f"    {p} = " in section for p in MODULES["skirtor2016"])
    header, row = data.read_text().splitlines()
    columns = header[2:].split()
    assert columns[:2] == ["id", "redshift"] and "jwst.nircam.F444W" in columns and "jwst.nircam.F444W_err" in columns
    i = source.bands.index("f444w")
    assert float(row.split()[columns.index("jwst.nircam.F444W")]) == pytest.approx(source.flux_ujy[i] / 1000, rel=1e-4)
    with pytest.raises(FitError, match="pcigale is not installed here: the files are in"):
        CigaleFitter().fit(source, spec, workdir=str(tmp_path / "run"))
    assert (tmp_path / "run" / "pcigale.ini").is_file()


def test_fit_catalog_fits_the_flagged_sources_and_writes_paths_and_records(tmp_path, monkeypatch):
    from astrorag.fit import FITTERS
    from astrorag.settings import Settings
    from astrorag.workflows import fit_catalog_file

    monkeypatch.setitem(FITTERS, "two-component", lambda n_live, seed: TwoComponentFitter())
    table = tmp_path / "cat.csv"
    lines = (LRD_TABLE.read_text().splitlines())
    table.write_text("\n".join(lines[:5]) + "\n")  # four LRDs
    ids = [line.split(",")[0] for line in lines[1:5]]
    flags = tmp_path / "flags.csv"
    # advise-catalog's output columns (id, is_lrd written as True/False); one source unflagged, one not in the table
    flags.write_text("id,is_lrd\n" + "".join(f"{i},{'False' if n == 1 else 'True'}\n" for n, i in enumerate(ids))
                     + "999999,True\n")
    report = fit_catalog_file(Settings(index_dir=tmp_path / "idx"), table, flags, tmp_path / "fits.jsonl",
                              fitter="two-component", steps=2, width=2)
    assert report["flagged"] == 4 and report["fitted"] == 3 and report["not_in_photometry"] == ["999999"]
    paths = [json.loads(line) for line in (tmp_path / "fits.jsonl").read_text().splitlines()]
    assert [p["source_id"] for p in paths] == [ids[0], ids[2], ids[3]]
    assert all(p["steps"][0]["change"] == "baseline" for p in paths)
    outcomes, problems = read_fitlog(tmp_path / "fits.fitlog.jsonl")
    assert not problems and len(outcomes) == sum(len(p["records"]) for p in paths) > 0


def test_the_app_shows_the_fit_path_as_a_table():
    from astrorag.ui import fit_markdown

    phot = syn.population("lrd", 1, seed=3)
    path = run_loop(phot, RuleGraph.from_seeds(), TwoComponentFitter(), source_photometry(phot, 0), steps=2, width=2)
    text = fit_markdown(path)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(path.steps) and rows[0].startswith("| 0 | baseline |")
    kept = [r for r in rows if r.rstrip().endswith("| yes |")]
    assert len(kept) == len(path.accepted) == 1 and "skirtor2016" in text and "final model:" in text


def test_eval_fit_real_scores_the_advised_change_on_a_bundled_lrd(tmp_path):
    """eval fit --real on one development LRD: a baseline, the advised change and a random one, each refit."""
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"))
    run = subprocess.run([sys.executable, "-m", "astrorag", "eval", "fit", "--real", "--ids", "11219", "--n-live", "20",
                          "--workers", "2", "--json", "--out", str(tmp_path / "report")], capture_output=True,
                         text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["sources"] == 1 and report["table"] == "kokorev2024_lrd_dev.csv"
    assert 0 <= report["top1_decisive_rate"] <= 1 and report["cpu_seconds_per_source"] > 0
    row = json.loads((tmp_path / "report" / "predictions.jsonl").read_text().splitlines()[0])
    assert row["source"] == "11219" and row["top1"] and row["symptoms"]   # a V-shaped LRD gets advice
    assert "top1_ln_z_gain" in row and "random_ln_z_gain" in row
    assert report["top1_decisive_rate"] == float(row["top1_ln_z_gain"] >= report["threshold_ln_z"])


def test_exhaustive_search_counts_fits_to_the_best_change_in_advised_and_random_order():
    from astrorag.evaluation.fit_eval import _score_exhaustive

    specs = [baseline(5.0).with_value("nebular", "logU", value) for value in (-2.5, -2.0, -1.5, -1.0)]
    row = {"top1": "rule-a", "baseline_seconds": 10.0, "_order": specs, "_random": specs[3],
           "_gains": dict(zip(specs, [2.0, None, 9.5, 9.0])), "_seconds": dict(zip(specs, [5.0, 0.0, 6.0, 7.0]))}
    _score_exhaustive(row)
    assert row["top1_ln_z_gain"] == 2.0 and row["random_ln_z_gain"] == 9.0
    assert row["exhaustive_best_ln_z_gain"] == 9.5
    # c (9.5) and d (9.0, within 1 of the best) both reach it; in the advised order c is the third change:
    # baseline + a + b + c = 4 fits; a random order expects 1 + (4 + 1) / (2 + 1).
    assert row["fits_to_best_advised"] == 4 and row["fits_to_best_random_expected"] == pytest.approx(2.67)
    assert row["exhaustive_cpu_seconds"] == 28.0 and not any(k.startswith("_") for k in row)


def test_lines_beside_an_age_pinned_at_the_universe_widen_the_dust_before_dimming_the_lines():
    """A fit that pins the age at the age of the Universe while the lines say stars form now: the age-dust
    degeneracy. The first testable change widens the attenuation; lowering the line attenuation comes later."""
    from astrorag.fit.loop import candidate_actions

    symptoms = ["red_optical_continuum", "strong_balmer_break", "emission_line_excess", "optical_underestimated",
                "age_at_limit"]
    spec = baseline(5.0)
    chosen, _ = candidate_actions(RuleGraph.from_seeds(), symptoms, spec, get_fitter("bagpipes"), 3, {spec})
    ids = [action.rule_id for action, _, _ in chosen]
    assert ids[0] == "att-lines-beside-old-age", ids
    assert chosen[0][1].value("dustatt_modified_starburst", "E_BV_lines") == (0.0, 1.0)
    assert ids.index("att-lines-vs-continuum") > 0
    # without the pinned age the same lines ask for less line attenuation, not more dust
    chosen, _ = candidate_actions(RuleGraph.from_seeds(), symptoms[:-1], spec, get_fitter("bagpipes"), 3, {spec})
    assert "att-lines-beside-old-age" not in [action.rule_id for action, _, _ in chosen]


def test_equal_scores_try_the_change_nested_in_the_model_first():
    """Two rules of equal score: widening a range the model has comes before adding a component, whatever
    their ids (the id alone would put the AGN first here)."""
    from astrorag.fit.loop import candidate_actions
    from astrorag.types import Rule

    graph = RuleGraph()
    graph.add_rule(Rule("a-add-agn", ("v_shaped_sed",), Action("increase", "fracAGN", "skirtor2016", "0.1 - 0.5"),
                        "why", 0.6, ("1811.03094",), "seed"))
    graph.add_rule(Rule("b-widen-dust", ("v_shaped_sed",), Action("widen", "E_BV_lines", "dustatt_modified_starburst",
                                                                  "0.0 - 1.0"), "why", 0.6, ("1811.03094",), "seed"))
    spec = baseline(5.0)
    chosen, _ = candidate_actions(graph, ["v_shaped_sed"], spec, get_fitter("bagpipes"), 1, {spec})
    assert [action.rule_id for action, _, _ in chosen] == ["b-widen-dust"]
    chosen, _ = candidate_actions(graph, ["v_shaped_sed"], spec, get_fitter("bagpipes"), 2, {spec})
    assert [action.rule_id for action, _, _ in chosen] == ["b-widen-dust", "a-add-agn"]
    assert chosen[1][1].has("skirtor2016") and not spec.has("skirtor2016")
