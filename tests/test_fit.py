"""The fitting loop: model specification, actions as transforms, translation, the loop, bagpipes itself."""

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cigale_validator import problems

from astrorag.errors import ConfigError, InputError
from astrorag.fit import FitResult, Fitter, get_fitter
from astrorag.fit.bagpipes_fitter import to_bagpipes
from astrorag.fit.base import chi2_of
from astrorag.fit.loop import MIN_DELTA_BIC, run_loop
from astrorag.fit.spec import NotAModelChange, apply_action, baseline, cosmic_age_myr, parse_range
from astrorag.graph.learn import learn, read_fitlog
from astrorag.graph.model import RuleGraph
from astrorag.graph.types import Action
from astrorag.sed import synthetic as syn
from astrorag.settings import FitSettings

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


def test_actions_apply_their_companions_exactly_as_the_rule_states_or_not_at_all():
    graph = RuleGraph.from_seeds()
    spec = baseline(5.43)

    def cap(model):   # the continuum E(B-V) cap: E_BV_factor x the top of E_BV_lines
        dust = model.module("dustatt_modified_starburst")
        return dust["E_BV_factor"] * dust["E_BV_lines"][1]

    # Lower the line attenuation at a fixed product: the continuum cap (and bagpipes' A_V cap) stays.
    lines, note = apply_action(spec, graph.get("att-lines-vs-continuum").action)
    assert lines.value("dustatt_modified_starburst", "E_BV_lines") == (0.0, 0.3)
    assert cap(lines) == pytest.approx(cap(spec), rel=1e-5) and "E_BV_factor 0.44 -> 0.733333" in note
    assert to_bagpipes(lines)[0]["dust"]["Av"] == to_bagpipes(spec)[0]["dust"]["Av"] == (0.0, 0.891)
    # "extend below the default grid" extends it; xray's max_dev_alpha_ox stays one number, as CIGALE reads it.
    xray, _ = apply_action(spec, graph.get("agn-xray-weak").action)
    assert xray.module("xray") == {"alpha_ox": (-2.5, -1.1), "max_dev_alpha_ox": 1.0}
    # Widening is relative: a range already as wide as the rule says widens again by the rule's factor.
    once, _ = apply_action(spec, graph.get("att-at-limit").action)
    twice, _ = apply_action(once, graph.get("att-at-limit").action)
    assert once.value("dustatt_modified_starburst", "E_BV_lines") == (0.0, 1.0)
    assert twice.value("dustatt_modified_starburst", "E_BV_lines") == (0.0, 2.0)
    # A companion that cannot be applied refuses the whole action: never half-applied.
    with pytest.raises(NotAModelChange, match="not applied at all"):
        apply_action(spec, Action("decrease", "E_BV_lines", "dustatt_modified_starburst", "0.0 - 0.3",
                                  also=(("E_BV_factor", "raise it somewhat"),)))
    with pytest.raises(NotAModelChange, match="outside its physical range"):
        apply_action(spec, Action("decrease", "E_BV_lines", "dustatt_modified_starburst", "0.0 - 0.1",
                                  also=(("E_BV_factor", "raise so that E_BV_factor x E_BV_lines is unchanged"),)))
    # The LRD AGN rules let bagpipes' AGN make broad Balmer lines of free strength.
    agn, _ = apply_action(spec, graph.get("lrd-reddened-agn").action)
    assert to_bagpipes(agn)[0]["agn"]["hanorm"] == (10.0, 3000.0)
    assert to_bagpipes(apply_action(spec, graph.get("agn-hot-dust-nir").action)[0])[0]["agn"]["hanorm"] == 0.0


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
    # 4.05 x 0.44 x 0.5; eta 1: young and old stars get CIGALE's one continuum attenuation
    assert out["dust"] == {"type": "Calzetti", "Av": (0.0, 0.891), "eta": 1.0}
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

    def fit(self, phot, spec, workdir=None, replicate=0):
        lam = phot.pivots / (1 + phot.redshift)
        shapes = [lam ** 0.0]  # f_nu flat: beta_UV = -2
        if spec.member("agn"):
            shapes.append(np.clip(lam / 0.5, 0, None) ** 3.0)  # red rest-optical continuum
        f, e = phot.flux[0], phot.fit_err[0]
        use = np.isfinite(f) & np.isfinite(e) & (e > 0)
        design = np.stack([s[use] / e[use] for s in shapes], axis=1)
        coef, *_ = np.linalg.lstsq(design, f[use] / e[use], rcond=None)
        model = np.sum([c * s for c, s in zip(coef, shapes)], axis=0)
        chi2, n = chi2_of(phot, model)
        return FitResult(self.name, spec, model.tolist(), chi2, n, len(shapes), None, 0.01)


def test_the_loop_keeps_a_change_only_when_bic_says_so_and_writes_learnable_records(tmp_path):
    source = syn.population("lrd", 1, seed=3).source(0, error_floor=FitSettings.error_floor)
    graph = RuleGraph.from_seeds()
    path = run_loop(source, graph, TwoComponentFitter(), steps=3, width=2)
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
    runs = fit_sources(Settings(index_dir=tmp_path, fitter="bagpipes", n_live=20, n_eff=0, fit_steps=0),
                       replace(phot, flux=flux))
    assert runs[1].path is None and "detected band" in runs[1].error
    assert runs[0].path is not None or "bagpipes" in runs[0].error


bagpipes = pytest.importorskip("bagpipes", reason="the fit extra is not installed: pip install -e '.[fit]'")


def test_bagpipes_fits_a_source_it_generated_and_the_cli_prints_the_path(tmp_path):
    from astrorag.evaluation.fit_truths import BANDS, draw_truth, synthesise

    source = synthesise(draw_truth("high_av", 0, np.random.default_rng(7)))
    result = get_fitter("bagpipes", n_live=30, n_eff=0).fit(source, baseline(source.redshift))
    assert np.isfinite(result.log_evidence) and result.n_free == 5
    assert result.chi2 == pytest.approx(chi2_of(source, np.asarray(result.model_ujy))[0])
    assert "delayed:massformed" in result.posterior and 4 < result.posterior["delayed:massformed"]["p50"] < 13
    bright = source.flux[0] > 10 * source.fit_err[0]
    assert np.all(np.asarray(result.model_ujy)[bright] > 0)
    # The CLI on a CSV of the same source: the baseline first, one refit, records that rules learn reads.
    table = tmp_path / "phot.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "z", *[c for b in BANDS for c in (f"{b}_flux", f"{b}_fluxerr")]])
        writer.writerow([source.source_id, source.redshift,
                         *[v for f, e in zip(source.flux[0], source.err[0]) for v in (f, e)]])
    records = tmp_path / "records.jsonl"
    run = subprocess.run([sys.executable, "-m", "astrorag", "fit", str(table), "--id", source.source_id, "--json",
                          "--steps", "1", "--width", "1", "--n-live", "30", "--n-eff", "0", "--records", str(records)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env=dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx")))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["steps"][0]["change"] == "baseline" and data["criterion"] == "log_evidence"
    # Every step carries the inflation its errors needed beside chi2_red, and the run a verdict in words.
    assert data["steps"][0]["inflation"] >= 1.0 and data["steps"][0]["chi2_red_inflated"] is not None
    assert data["verdict"] and data["comparisons"] == 1
    if len(data["steps"]) == 1:   # nothing testable was advised: each skipped action says why
        assert data["skipped_actions"] and all(s["why"] for s in data["skipped_actions"])
    else:
        assert {"chi2", "log_evidence", "accepted", "delta", "inflation"} <= set(data["steps"][1])
        assert data["steps"][1]["action"]["rule_id"]
        outcomes, problems = read_fitlog(records)
        assert len(outcomes) == 1 and not problems
    assert not (tmp_path / "pipes").exists()  # bagpipes' files go to a folder of their own


def test_cigale_files_follow_cigales_format_and_say_why(tmp_path):
    from astrorag.fit import FitError
    from astrorag.fit.cigale import CigaleFitter, write_ini

    source = syn.population("lrd", 1, seed=5).source(0, error_floor=FitSettings.error_floor)
    spec, _ = apply_action(baseline(source.redshift), Action("increase", "EBV", "skirtor2016", "0.1 - 0.5"))
    ini, data = write_ini(spec, source, tmp_path, {"skirtor2016": "rule lrd-agn-red-continuum (2306.07320)",
                                                   "skirtor2016.EBV": "polar dust on the disc light"})
    text = ini.read_text()
    assert "sed_modules = sfhdelayed, bc03, nebular, dustatt_modified_starburst, skirtor2016, redshifting" in text
    assert "[sed_modules_params]" in text and "[analysis_params]" in text and "  [[skirtor2016]]" in text
    assert "    EBV = 0.1, 0.2, 0.3, 0.4, 0.5" in text and "    imf = 1" in text
    assert "# astrorag: rule lrd-agn-red-continuum (2306.07320)" in text
    assert "    # astrorag: polar dust on the disc light\n    EBV" in text
    # bc03 has six metallicities: the spec's 0.002-0.03 becomes the three inside it, and the file says so.
    assert "    metallicity = 0.004, 0.008, 0.02" in text and "snapped to its grid values" in text
    # Every band is fitted with its own errors (without _err CIGALE substitutes 10 % of the flux), and the
    # 5 % floor already in those errors is not added a second time.
    bands = text.split("\nbands = ")[1].splitlines()[0].split(", ")
    assert "jwst.nircam.F444W" in bands and "jwst.nircam.F444W_err" in bands and len(bands) % 2 == 0
    assert "additionalerror = 0.0" in text
    assert problems(tmp_path) == []
    header, row = data.read_text().splitlines()
    columns = header[2:].split()
    assert columns[:2] == ["id", "redshift"] and "jwst.nircam.F444W" in columns and "jwst.nircam.F444W_err" in columns
    i = source.band_index("f444w")
    assert float(row.split()[columns.index("jwst.nircam.F444W")]) == pytest.approx(source.flux[0, i] / 1000, rel=1e-4)
    with pytest.raises(FitError, match="pcigale is not installed here: the files are in"):
        CigaleFitter().fit(source, spec, workdir=str(tmp_path / "run"))
    assert (tmp_path / "run" / "pcigale.ini").is_file() and (tmp_path / "run" / "pcigale.ini.spec").is_file()


def test_the_validator_refuses_what_cigale_refuses(tmp_path):
    """The validator is not a rubber stamp: each of CIGALE's rules, broken once, is caught."""
    from astrorag.fit.cigale import write_ini

    source = syn.population("lrd", 1, seed=5).source(0, error_floor=FitSettings.error_floor)
    write_ini(baseline(source.redshift), source, tmp_path)
    good = (tmp_path / "pcigale.ini").read_text()
    broken = {
        "    metallicity = 0.004, 0.008, 0.02": "    metallicity = 0.0039, 0.0077",     # not a bc03 value
        "    logU = -3": "    logU = -2.125",                                             # not on the log U grid
        "    age_main = ": "    age_main = 10.5, ",                                       # integers only
        "    E_BV_factor = 0.44": "    E_BV_factor = 1.5",                                 # above its maximum
    }
    for old, new in broken.items():
        assert old in good, old
        (tmp_path / "pcigale.ini").write_text(good.replace(old, new, 1))
        assert problems(tmp_path), new
    (tmp_path / "pcigale.ini").write_text(good.replace("_err", "_error"))
    assert any("no" in p and "_err" in p for p in problems(tmp_path))
    (tmp_path / "pcigale.ini").write_text(good)
    (tmp_path / "pcigale.ini.spec").unlink()
    assert "no pcigale.ini.spec" in problems(tmp_path)[0]


def test_every_seed_rule_gives_a_pcigale_ini_cigale_accepts(tmp_path):
    """Each seed rule's action applied to the baseline: the CIGALE files pass the validator, the modules keep
    CIGALE's order (an AGN after the attenuation), and what needed snapping is said in the file."""
    from astrorag.fit.cigale import write_ini

    source = syn.population("lrd", 1, seed=5).source(0, error_floor=FitSettings.error_floor)
    spec0 = baseline(source.redshift)
    written = 0
    for rule in RuleGraph.from_seeds().rules():
        try:
            spec, _ = apply_action(spec0, rule.action)
        except NotAModelChange:
            continue
        folder = tmp_path / rule.rule_id
        if spec.has("bhstar"):   # astrorag's extension: CIGALE has no such module, and the writer says so
            with pytest.raises(InputError, match="CIGALE has no such module"):
                write_ini(spec, source, folder)
            continue
        write_ini(spec, source, folder)
        assert problems(folder) == [], rule.rule_id
        written += 1
    assert written >= 30
    text = (tmp_path / "agn-xray-weak" / "pcigale.ini").read_text()
    assert "    max_dev_alpha_ox = 1\n" in text and "    alpha_ox = -2.5, " in text   # a float, and the grid extended
    fritz = (tmp_path / "agn-fritz-alternative" / "pcigale.ini").read_text()
    assert "    psy = 60.1\n" in fritz     # a type-1 view from the equator's side (psy 90 = type 1)
    burst = (tmp_path / "sfh-faded-burst" / "pcigale.ini").read_text()
    assert "    tau_burst = 2\n" in burst  # a burst that has ended, not CIGALE's still-forming 50 Myr default
    broad = (tmp_path / "lrd-reddened-agn" / "pcigale.ini").read_text()
    assert "# Left out: " in broad and "broad_lines" not in broad.split("[sed_modules_params]")[1].replace(
        "broad_lines = free", "")


def test_fit_catalog_fits_the_flagged_sources_and_writes_paths_and_records(tmp_path, monkeypatch):
    from astrorag.fit import FITTERS
    from astrorag.settings import Settings
    from astrorag.workflows import fit_catalog_file

    monkeypatch.setitem(FITTERS, "two-component", lambda options: TwoComponentFitter())
    table = tmp_path / "cat.csv"
    lines = (LRD_TABLE.read_text().splitlines())
    table.write_text("\n".join(lines[:5]) + "\n")  # four LRDs
    ids = [line.split(",")[0] for line in lines[1:5]]
    flags = tmp_path / "flags.csv"
    # advise-catalog's output columns (id, is_lrd written as True/False); one source unflagged, one not in the table
    flags.write_text("id,is_lrd\n" + "".join(f"{i},{'False' if n == 1 else 'True'}\n" for n, i in enumerate(ids))
                     + "999999,True\n")
    settings = Settings(index_dir=tmp_path / "idx", fitter="two-component", fit_steps=2, fit_width=2)
    report = fit_catalog_file(settings, table, flags, tmp_path / "fits.jsonl")
    assert report["flagged"] == 4 and report["fitted"] == 3 and report["not_in_photometry"] == ["999999"]
    paths = [json.loads(line) for line in (tmp_path / "fits.jsonl").read_text().splitlines()]
    assert [p["source_id"] for p in paths] == [ids[0], ids[2], ids[3]]
    assert all(p["steps"][0]["change"] == "baseline" for p in paths)
    outcomes, problems = read_fitlog(tmp_path / "fits.fitlog.jsonl")
    assert not problems and len(outcomes) == sum(len(p["records"]) for p in paths) > 0


def test_the_app_shows_the_fit_path_as_a_table():
    from astrorag.render import fit_markdown

    source = syn.population("lrd", 1, seed=3).source(0, error_floor=FitSettings.error_floor)
    path = run_loop(source, RuleGraph.from_seeds(), TwoComponentFitter(), steps=2, width=2)
    text = fit_markdown(path)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(path.steps) and rows[0].startswith("| 0 | baseline |")
    kept = [r for r in rows if r.rstrip().endswith("| yes |")]
    assert len(kept) == len(path.accepted) == 1 and "skirtor2016" in text and "final model:" in text


def test_eval_fit_real_scores_the_advised_change_on_a_bundled_lrd(tmp_path):
    """eval fit --real on one development LRD: a baseline, the advised change and a random one, each refit."""
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"))
    run = subprocess.run([sys.executable, "-m", "astrorag", "eval", "fit", "--real", "--ids", "11219", "--n-live", "20", "--n-eff", "0",
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
    # Lowering the line attenuation alone is not representable in bagpipes (its lines take the continuum's).
    assert "att-lines-vs-continuum" not in ids
    # without the pinned age the same lines ask for less line attenuation, not more dust
    chosen, _ = candidate_actions(RuleGraph.from_seeds(), symptoms[:-1], spec, get_fitter("bagpipes"), 3, {spec})
    assert "att-lines-beside-old-age" not in [action.rule_id for action, _, _ in chosen]


def test_equal_scores_try_the_change_nested_in_the_model_first():
    """Two rules of equal score: widening a range the model has comes before adding a component, whatever
    their ids (the id alone would put the AGN first here)."""
    from astrorag.fit.loop import candidate_actions
    from astrorag.graph.types import Rule

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


class SeededEvidenceFitter(Fitter):
    """A fitter with an evidence whose value is set per model and replicate: the loop's comparison rules are
    tested on known numbers (a real subclass of the base class; its fits are the two-component least squares)."""

    name = "seeded-evidence"
    gives_evidence = True

    def __init__(self, ln_z: dict):
        super().__init__()
        self.ln_z = ln_z   # (has an AGN, replicate) -> ln Z
        self.calls: list[tuple[bool, int]] = []

    def translate(self, spec):
        return ("stars", "agn") if spec.member("agn") else ("stars",)

    def fit(self, phot, spec, workdir=None, replicate=0):
        result = TwoComponentFitter().fit(phot, spec)
        key = (spec.member("agn") is not None, replicate)
        self.calls.append(key)
        result.fitter, result.log_evidence, result.log_evidence_err = self.name, self.ln_z[key], 0.05
        return result


def test_the_loop_checks_the_baseline_with_two_seeds_and_confirms_a_kept_change():
    source = syn.population("lrd", 1, seed=3).source(0, error_floor=FitSettings.error_floor)
    graph = RuleGraph.from_seeds()
    # Replicates that agree; an AGN that gains 10 with both seeds: kept, after one confirming refit.
    fitter = SeededEvidenceFitter({(False, 0): 100.0, (False, 1): 100.4, (True, 0): 110.0, (True, 1): 109.5})
    path = run_loop(source, graph, fitter, steps=1, width=1)
    assert not path.multimodal and path.steps[0].replicates == [100.0, 100.4]
    assert path.baseline.log_evidence == 100.4          # the better of the two seeds
    kept = path.accepted
    assert len(kept) == 1 and kept[0].replicates == [110.0, 109.5] and kept[0].delta == pytest.approx(9.1)
    assert kept[0].threshold == 3.0 and kept[0].threshold_bar == "kass_raftery"
    assert fitter.calls.count((True, 1)) == 1
    # A change that passes with one seed and not with the other is not kept.
    fitter = SeededEvidenceFitter({(False, 0): 100.0, (False, 1): 100.0, (True, 0): 104.0, (True, 1): 101.0})
    path = run_loop(source, graph, fitter, steps=1, width=1)
    assert not path.accepted and path.steps[1].delta == pytest.approx(1.0)
    # Baseline seeds 8 apart: another mode; a third seed runs, the best is used, and the spread they show
    # raises the bar (a gain of 9 no longer passes: 1.64 x sqrt(2) x sd of the three).
    fitter = SeededEvidenceFitter({(False, 0): 100.0, (False, 1): 92.0, (False, 2): 96.0, (True, 0): 109.0,
                                   (True, 1): 109.0})
    path = run_loop(source, graph, fitter, steps=1, width=1)
    assert path.multimodal and path.steps[0].replicates == [100.0, 92.0, 96.0] and path.baseline.log_evidence == 100.0
    assert path.spread == pytest.approx(4.0) and path.steps[1].threshold > 9.0 and not path.accepted
    text = json.dumps(path.to_dict())
    assert '"multimodal": true' in text and '"quality"' in text and '"at_prior_edge"' in text


def test_fit_quality_is_stated_in_words_a_reader_can_act_on():
    spec = baseline(5.0)
    edge = {"dust:Av": (0.0, 0.891, "linear"), "delayed:age": (0.01, 1.0, "log")}
    fit = FitResult("x", spec, [], 8.0, 12, 5, 0.0, 1.0,
                    {"dust:Av": {"p16": 0.86, "p50": 0.88, "p84": 0.89}, "delayed:age": {"p16": 0.2, "p50": 0.3,
                                                                                      "p84": 0.4}}, priors=edge)
    assert fit.at_prior_edge == {"dust:Av": "upper"}
    assert fit.quality == "prior-limited: dust:Av at its upper prior edge"
    poor = FitResult("x", spec, [], 77.0, 12, 5, 0.0, 1.0)
    assert poor.quality.startswith("poor: chi2_red 11.0")
    assert FitResult("x", spec, [], 7.0, 12, 5, 0.0, 1.0).quality == "adequate: chi2_red 1.00"
    young = FitResult("x", spec, [], 7.0, 12, 5, 0.0, 1.0, {"delayed:age": {"p16": 0.01, "p50": 0.011, "p84": 0.013}},
                      priors=edge)
    assert young.at_prior_edge == {"delayed:age": "lower"}


def test_benchmark_truths_are_drawn_reproducibly_and_nulls_are_the_baseline_model():
    from astrorag.evaluation.fit_truths import draw_truths

    first, again, other = draw_truths(3, 2, seed=0), draw_truths(3, 2, seed=0), draw_truths(3, 2, seed=1)
    assert [t.drawn for t in first] == [t.drawn for t in again] and [t.drawn for t in first] != [t.drawn for t in other]
    assert len(first) == 14 and len({t.source_id for t in first}) == 14
    for t in first:
        if t.kind == "null":
            assert t.components["dust"]["eta"] == 1.0 and t.components["nebular"]["logU"] == -3.0
            assert t.components["dust"]["Av"] <= 0.891 and "agn" not in t.components
            # every other null carries zero-point offsets (model mismatch no rule should answer)
            assert ("zero_point_offsets_mag" in t.drawn) == (t.index % 2 == 1)
        else:
            assert t.components["dust"]["eta"] != 1.0   # the fit's eta is not the truth's
    assert all(1.4 <= t.key_value <= 3.0 for t in first if t.kind == "high_av")


def test_a_fit_with_the_same_seed_takes_the_same_path(tmp_path):
    """The same command with the same --seed gives the same steps, byte for byte apart from timings."""
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"))
    command = [sys.executable, "-m", "astrorag", "fit", str(LRD_TABLE), "--id", "11219", "--json", "--seed", "1",
               "--n-live", "30", "--n-eff", "0", "--steps", "1", "--width", "1", "--workers", "1"]

    def steps() -> list:
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        data = json.loads(run.stdout)
        assert data["seed"] == 1 and "quality" in data and "chi2_red" in data and "at_prior_edge" in data
        return [{k: v for k, v in s.items() if k != "seconds"} for s in data["steps"]]

    first, second = steps(), steps()
    assert first == second and len(first[0]["replicates"]) >= 2
    assert all(s["log_evidence_err"] is not None for s in first if not s["error"])


def test_eval_fit_reports_recovery_against_baselines_and_the_false_acceptance_rate(tmp_path):
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"))
    command = [sys.executable, "-m", "astrorag", "eval", "fit", "--per-kind", "1", "--nulls", "1", "--n-live", "20",
               "--n-eff", "0", "--steps", "1", "--width", "1", "--json", "--out", str(tmp_path / "r")]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["n_truths"] == 5 and report["n_null"] == 1
    for key in ("detected_rate", "ranked_rate", "refit_rate", "top1_recovery_rate", "matched_random_recovery_rate",
                "heuristic_recovery_rate", "false_acceptance_rate", "coverage", "cpu_seconds_per_source"):
        assert key in report, key
    # A lighter run than the product's says so, with what differs.
    assert report["product_settings"] is False and report["lighter_than_product"]["n_live"] == {"used": 20,
                                                                                               "product": 200}
    assert all({"coverage_68", "coverage_95", "n"} <= set(c) for c in report["coverage"].values())
    assert "dust:Av" in report["coverage"]
    assert 0 <= report["false_acceptance_rate"] <= 1 and report["cpu_seconds_per_source"] > 0
    rows = [json.loads(line) for line in (tmp_path / "r" / "predictions.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"hidden_agn", "high_av", "recent_burst", "strong_lines", "null"}
    assert all("baseline_replicates" in r and "heuristic_change" in r and "detected" in r for r in rows)
    # The same command again resumes from sources.jsonl: nothing is refitted.
    again = subprocess.run(command[:-3] + ["--out", str(tmp_path / "r")], capture_output=True, text=True,
                           timeout=300, env=env)
    assert again.returncode == 0 and "resuming: 5 of 5 sources" in again.stdout, again.stderr


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process parents from /proc (Linux)")
def test_a_killed_fit_leaves_no_process_or_folder_and_the_same_command_resumes(tmp_path):
    import signal
    import time

    from astrorag.evaluation.fit_truths import BANDS, draw_truth, synthesise

    source = synthesise(draw_truth("high_av", 0, np.random.default_rng(7)))
    table = tmp_path / "phot.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "z", *[c for b in BANDS for c in (f"{b}_flux", f"{b}_fluxerr")]])
        writer.writerow([source.source_id, source.redshift,
                         *[v for f, e in zip(source.flux[0], source.err[0]) for v in (f, e)]])
    scratch, cache = tmp_path / "tmp", tmp_path / "cache"
    scratch.mkdir()
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(tmp_path / "idx"), TMPDIR=str(scratch), XDG_CACHE_HOME=str(cache))
    command = [sys.executable, "-m", "astrorag", "fit", str(table), "--steps", "0", "--width", "2", "--workers", "2",
               "--n-live", "30", "--n-eff", "0", "--json"]
    first = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kept = lambda: list((cache / "astrorag" / "fits").glob("*/*.json"))
    deadline = time.time() + 300
    while not kept() and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert kept(), "no fit finished in time"
    workers = _children(first.pid)
    assert workers, "the fit runs in a pool of workers"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    deadline = time.time() + 15
    while (any(_alive(p) for p in workers) or list(scratch.glob("astrorag-bagpipes-*"))) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "a pool worker outlived the killed fit"
    assert not list(scratch.glob("astrorag-bagpipes-*")), "a scratch folder outlived the killed fit"
    finished = len(kept())
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    reused = int(re.search(r"(\d+) fit\(s\) taken from the fit cache", again.stderr).group(1))
    assert reused >= finished and json.loads(again.stdout)["steps"][0]["change"] == "baseline"
    assert not list(scratch.glob("astrorag-bagpipes-*"))
    # SIGTERM (a batch system's time limit) mid-fit: the same clean-up as Ctrl-C, and a message that is true.
    third = subprocess.Popen([*command, "--fresh", "--seed", "5"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(scratch.glob("astrorag-bagpipes-*")) and time.time() < deadline:
        time.sleep(0.1)
    workers = _children(third.pid)
    third.send_signal(signal.SIGTERM)
    _, err = third.communicate(timeout=60)
    assert third.returncode == 143 and "interrupted: the fits that finished are kept" in err
    assert not any(_alive(p) for p in workers) and not list(scratch.glob("astrorag-bagpipes-*"))


def test_the_translation_table_is_what_to_bagpipes_does():
    """Each row of TRANSLATION (the table the guide prints) is checked against to_bagpipes: a row added to the
    table without a check here fails, and so does code that drifts from its row."""
    from astrorag.fit.bagpipes_fitter import TRANSLATION, to_bagpipes

    base = baseline(5.0)

    def run(spec):
        return to_bagpipes(spec)

    def sfh_times():
        out, _ = run(base.with_value("sfhdelayed", "age_main", 500.0).with_value("sfhdelayed", "tau_main", 200.0))
        assert out["delayed"]["age"] == pytest.approx(0.5) and out["delayed"]["tau"] == pytest.approx(0.2)

    def burst():
        out, lost = run(base.with_value("sfhdelayed", "f_burst", 0.1).with_value("sfhdelayed", "age_burst", 20.0))
        assert out["burst"]["massformed"] == (4.0, 13.0) and out["burst"]["age"] == pytest.approx(0.02)
        assert any("f_burst" in x for x in lost)

    def mass():
        assert run(base)[0]["delayed"]["massformed"] == (4.0, 13.0)

    def metallicity():
        assert run(base.with_value("bc03", "metallicity", 0.004))[0]["delayed"]["metallicity"] == pytest.approx(0.2)

    def imf():
        assert any("Kroupa" in x for x in run(base.with_value("bc03", "imf", "chabrier"))[1])

    def other_sfh():
        spec = base.without("sfhdelayed").with_module("sfh2exp", {"tau_main": 100.0})
        with pytest.raises(Exception, match="sfhdelayed"):
            run(spec)

    def logu():
        assert run(base.with_value("nebular", "logU", -3.0))[0]["nebular"]["logU"] == -3.0

    def zgas():
        assert run(base.with_value("nebular", "zgas", 0.004))[0]["nebular"]["metallicity"] == pytest.approx(0.2)

    def nebular_lost():
        assert any("f_esc" in x for x in run(base.with_value("nebular", "f_esc", 0.1))[1])

    def calzetti():
        spec = base.with_value("dustatt_modified_starburst", "E_BV_lines", 0.3)
        dust = run(spec.with_value("dustatt_modified_starburst", "E_BV_factor", 0.5))[0]["dust"]
        assert dust["Av"] == pytest.approx(4.05 * 0.5 * 0.3) and dust["eta"] == 1.0

    def salim():
        dust = run(base.with_value("dustatt_modified_starburst", "powerlaw_slope", -0.3))[0]["dust"]
        assert dust["type"] == "Salim" and dust["delta"] == -0.3

    def cf00():
        spec = base.without("dustatt_modified_starburst").with_module(
            "dustatt_modified_CF00", {"Av_ISM": 1.0, "mu": 0.5, "slope_ISM": -0.7, "slope_BC": -1.3})
        dust = run(spec)[0]["dust"]
        assert dust["type"] == "CF00" and dust["eta"] == pytest.approx(2.0) and dust["n"] == pytest.approx(0.7)

    def dl2014():
        dust = run(base.with_module("dl2014", {"qpah": 2.5, "umin": 1.0, "gamma": 0.1}))[0]["dust"]
        assert (dust["qpah"], dust["umin"], dust["gamma"]) == (2.5, 1.0, 0.1)

    agn = base.with_module("skirtor2016", {"fracAGN": (0.3, 0.9)})

    def frac_agn():
        out, _ = run(agn)
        assert out["agn"]["f5100A"] == (0.3, 0.9) and out["agn"]["f5100A_prior"] == "log_10"
        assert out["agn"]["alphalam"] == out["agn"]["betalam"] == -1.56 and out["agn"]["hanorm"] == 0.0

    def broad_lines():
        out = run(agn.with_value("skirtor2016", "broad_lines", "free"))[0]["agn"]
        assert out["hanorm"] == (10.0, 3000.0) and out["sigma"] == 2000.0

    def polar_dust():
        out = run(agn.with_value("skirtor2016", "EBV", 0.2))[0]
        assert out["agn_dust"]["type"] == "SMC" and out["agn_dust"]["Av"] == pytest.approx(2.74 * 0.2)

    def torus():
        assert any("torus" in x for x in run(agn)[1])

    def xray_radio():
        assert any("xray" in x for x in run(base.with_module("xray", {}))[1])

    def redshift():
        assert run(base)[0]["redshift"] == 5.0

    def black_hole_star():
        out = run(base.with_module("bhstar"))[0]["bhstar"]
        assert out == {"temperature": (2000.0, 9000.0), "f5500_share": (0.01, 1.5), "balmer_break": (0.0, 0.95),
                       "halpha_ew": (10.0, 2000.0)}
        assert "bhstar" not in run(base)[0]

    checks = {"sfhdelayed.age_main": sfh_times, "sfhdelayed.tau_main": sfh_times, "sfhdelayed.f_burst": burst,
              "(stellar mass)": mass, "bc03.metallicity": metallicity, "bc03.imf": imf, "sfh2exp": other_sfh,
              "nebular.logU": logu, "nebular.zgas": zgas, "nebular.f_esc": nebular_lost,
              "dustatt_modified_starburst.E_BV_lines": calzetti,
              "dustatt_modified_starburst.powerlaw_slope": salim, "dustatt_modified_CF00": cf00,
              "dl2014": dl2014, "skirtor2016 / fritz2006 fracAGN": frac_agn,
              "skirtor2016 / fritz2006 broad_lines": broad_lines, "skirtor2016 / fritz2006 EBV": polar_dust,
              "skirtor2016 / fritz2006 torus": torus, "xray, radio": xray_radio, "redshifting.redshift": redshift,
              "bhstar (astrorag extension)": black_hole_star}
    for cigale, _, _ in TRANSLATION:
        check = next((fn for key, fn in checks.items() if cigale.startswith(key)), None)
        assert check is not None, f"TRANSLATION row {cigale!r} has no check of what to_bagpipes does"
        check()


def test_the_guide_prints_the_translation_table_the_code_uses():
    from astrorag.fit.bagpipes_fitter import translation_markdown

    guide = (Path(__file__).parent.parent / "docs" / "GUIDE.md").read_text()
    assert translation_markdown() in guide
