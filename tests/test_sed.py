import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astrorag.errors import InputError
from astrorag.graph.model import RuleGraph
from astrorag.sed import synthetic as syn
from astrorag.sed.advisor import rank_actions
from astrorag.sed.analysis import analyse
from astrorag.sed.criteria import all_of, any_of
from astrorag.sed.filters import get_filter
from astrorag.sed.photometry import Photometry, read_photometry

LRD_TABLE = Path(__file__).parent.parent / "astrorag" / "data" / "kokorev2024_lrd_dev.csv"


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "astrorag", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def test_filter_pivots_come_from_the_curves():
    # Pivot wavelengths of the real curves (NIRCam F150W 1.501, F444W 4.404; MIRI F770W 7.639 micron).
    assert get_filter("F150W").pivot_um == pytest.approx(1.501, abs=0.005)
    assert get_filter("jwst.nircam.F444W").pivot_um == pytest.approx(4.404, abs=0.005)
    assert get_filter("f770w").pivot_um == pytest.approx(7.639, abs=0.01)
    assert get_filter("f160w").source.startswith("curve:") and get_filter("f814w").source == "handbook"
    assert get_filter("f150w2-f162m").name == "jwst.nircam.F162M"
    with pytest.raises(InputError, match="unknown filter 'F356X'; close names: f356w"):
        get_filter("F356X")


def test_kokorev_table_reads_as_it_is():
    phot = read_photometry(LRD_TABLE)
    assert len(phot) == 60 and not phot.problems
    j = phot.band_index("f444w")
    assert np.isfinite(phot.flux[:, j]).all() and np.all(phot.z > 4)
    # -99 means no coverage: F105W exists for only 12 of the 60.
    assert np.isfinite(phot.flux[:, phot.band_index("f105w")]).sum() == 12


def _write_cigale(tmp_path: Path) -> Path:
    phot = read_photometry(LRD_TABLE, ids=["11219"])
    bands = [b for b in phot.bands if np.isfinite(phot.flux[0, phot.bands.index(b)])]
    names = [f"jwst.nircam.{b.name.split('.')[-1]}" if b.instrument == "nircam" else b.short for b in bands]
    values = []
    for b in bands:
        j = phot.bands.index(b)
        values += [f"{phot.flux[0, j] / 1000:.6e}", f"{phot.err[0, j] / 1000:.6e}"]
    header = "# id redshift " + " ".join(f"{n} {n}_err" for n in names)
    path = tmp_path / "obs.txt"
    path.write_text(f"{header}\nlrd11219 {phot.z[0]:.4f} {' '.join(values)}\nbroken 5.0 1 2\n")
    return path


def test_cigale_observation_file_in_mjy_with_a_bad_line(tmp_path):
    path = _write_cigale(tmp_path)
    phot = read_photometry(path)
    ref = read_photometry(LRD_TABLE, ids=["11219"])
    assert list(phot.ids) == ["lrd11219"] and phot.z[0] == pytest.approx(5.4287, abs=1e-3)
    j, k = phot.band_index("f444w"), ref.band_index("f444w")
    assert phot.flux[0, j] == pytest.approx(ref.flux[0, k], rel=1e-5)     # mJy read back as uJy
    assert [(p.line, "expected" in p.reason) for p in phot.problems] == [(3, True)]


def test_units_upper_limits_and_magnitudes(tmp_path):
    import astropy.units as u
    from astropy.table import Table

    t = Table({"id": ["s1", "s2"], "z": [6.0, 6.0], "F444W_flux": [900.0, 1200.0] * u.nJy,
               "F444W_fluxerr": [30.0, 40.0] * u.nJy, "F150W_flux": [50.0, -10.0] * u.nJy,
               "F150W_fluxerr": [10.0, 10.0] * u.nJy})
    t.write(tmp_path / "p.ecsv")
    t.write(tmp_path / "p.fits")
    for name in ("p.ecsv", "p.fits"):
        phot = read_photometry(tmp_path / name)
        assert phot.flux[0, phot.band_index("f444w")] == pytest.approx(0.9)   # nJy -> uJy from the column unit
    csv = tmp_path / "m.csv"
    csv.write_text("id,redshift,mag_F444W,magerr_F444W,F150W_flux,F150W_fluxerr\n"
                   "x,6,23.9,0.1,0.5,-1\n")
    phot = read_photometry(csv)
    assert phot.flux[0, phot.band_index("f444w")] == pytest.approx(1.0)
    assert phot.upper[0, phot.band_index("f150w")]          # CIGALE convention: negative error = upper limit
    with pytest.raises(InputError, match="close names: f444w"):
        bad = tmp_path / "bad.csv"
        bad.write_text("id,z,F444X_flux,F444X_fluxerr,F150W_flux,F150W_fluxerr\na,6,1,0.1,1,0.1\n")
        read_photometry(bad)


def _power_law(beta_uv, beta_opt, z=6.0, bands=syn.HIGHZ_BANDS) -> Photometry:
    filt = [get_filter(b) for b in bands]
    lam = np.array([f.pivot_um for f in filt])[None, :] / (1 + z)
    fnu = syn.stellar_fnu(lam, np.array([beta_uv]), np.array([beta_opt]), np.array([0.0]))
    fnu = fnu / fnu.max() * 2.0
    return Photometry(np.array(["pl"]), np.array([z]), filt, fnu, fnu / 50.0, np.zeros_like(fnu, bool),
                      np.array([1]))


@pytest.mark.parametrize("beta_uv,beta_opt", [(-2.0, -1.5), (-1.5, 1.0), (-2.3, 2.0)])
def test_slopes_recover_known_power_laws(beta_uv, beta_opt):
    a = analyse(_power_law(beta_uv, beta_opt))
    assert a.diagnostics.beta_uv[0] == pytest.approx(beta_uv, abs=0.05)
    assert a.diagnostics.beta_opt[0] == pytest.approx(beta_opt, abs=0.05)
    v = beta_opt > 0
    assert a.symptoms["v_shaped_sed"][0] == v
    if v:
        assert a.diagnostics.turnover_um[0] == pytest.approx(0.3645, rel=0.05)   # the V turns at the Balmer limit


def test_lrd_flags_on_real_and_synthetic():
    real = analyse(read_photometry(LRD_TABLE))
    assert np.mean(real.lrd_flag == 1) >= 0.90 and not np.isnan(real.lrd_flag).any()
    assert np.all((real.lrd_score >= 0) & (real.lrd_score <= 1))
    assert all("kokorev2024" in real.votes(i) for i in range(len(real)) if real.lrd_flag[i] == 1)
    normal = analyse(syn.population("normal", 2000, seed=3))
    assert np.mean(normal.lrd_flag == 1) <= 0.05
    lrd = analyse(syn.population("lrd", 1000, seed=3))
    assert np.mean(lrd.lrd_flag == 1) >= 0.9


def test_kleene_logic_and_upper_limits_decide_cuts():
    """A failed term decides an AND whatever is unknown; a 2-sigma limit decides a colour cut when it can."""
    assert all_of(np.array([0.0]), np.array([np.nan])).tolist() == [0.0]
    assert np.isnan(all_of(np.array([1.0]), np.array([np.nan]))[0])
    assert any_of(np.array([1.0]), np.array([np.nan])).tolist() == [1.0]
    phot = read_photometry(LRD_TABLE, ids=["11219"])
    j444, j277 = phot.band_index("f444w"), phot.band_index("f277w")
    # S/N(F444W) = 5 fails Kokorev's S/N > 14 whatever the colours: not an LRD, not "not classifiable".
    faint = phot.select(np.array([True]))
    faint.err = faint.err.copy()
    faint.err[0, j444] = faint.flux[0, j444] / 5
    kok = {c.name: c for c in analyse(faint).criteria}["kokorev2024"]
    assert kok.passed[0] == 0.0
    # F277W undetected (flux 0, 2-sigma limit 3 mag fainter than F444W): the limit proves F277W-F444W > 1.
    red = phot.select(np.array([True]))
    red.flux, red.err = red.flux.copy(), red.err.copy()
    red.err[0, j277] = red.flux[0, j444] * 10 ** (-0.4 * 3.0) / 2
    red.flux[0, j277] = 0.0
    barro = {c.name: c for c in analyse(red).criteria}["barro2024"]
    assert barro.passed[0] == 1.0 and barro.terms["F277W-F444W"][0][0] != barro.terms["F277W-F444W"][0][0]  # NaN value
    # A shallow limit (F277W could be as bright as F444W) decides nothing: unknown.
    red.err[0, j277] = red.flux[0, j444] / 2
    assert np.isnan({c.name: c for c in analyse(red).criteria}["barro2024"].passed[0])


def test_high_redshift_lrds_selected_by_the_slopes():
    """z > 8 LRDs whose Balmer break moved into F356W fail the fixed colours but pass Kocevski's slopes:
    the headline flag takes any of the selecting criteria (with the V shape)."""
    lrd = analyse(syn.population("lrd", 1500, seed=4))
    by = {c.name: c.passed for c in lrd.criteria}
    high = lrd.phot.z >= 7.4
    kokorev_only = all_of(by["kokorev2024"], by["v_shape_excess"])
    assert high.sum() > 100
    assert np.mean(lrd.lrd_flag[high] == 1) >= np.mean(kokorev_only[high] == 1) + 0.2
    assert all(f != 1 or any(k in v for k in ("kokorev2024", "labbe2023b", "kocevski2024"))
               for f, v in zip(lrd.lrd_flag, (lrd.votes(i) for i in range(len(lrd)))))


@pytest.mark.parametrize("kind", syn.MISSPECIFICATIONS)
def test_injected_misspecification_ranks_the_right_action(kind):
    graph = RuleGraph.from_seeds()
    phot = syn.misspecified(kind, 200, seed=5)
    a = analyse(phot)
    first = top3 = 0
    for i in range(len(phot)):
        names = a.symptom_names(i)
        ok = [syn.is_right(kind, a.parameter, a.module, a.direction) for a in rank_actions(graph, names, 3)]
        first += bool(ok) and ok[0]
        top3 += any(ok)
    assert first / len(phot) >= 0.8 and top3 / len(phot) >= 0.95


def test_advise_cli_json_and_plot(tmp_path):
    out = tmp_path / "sed.png"
    run = _cli("advise", str(LRD_TABLE), "--id", "11219", "--json", "--plot", str(out),
               env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["id"] == "11219" and data["redshift"] == pytest.approx(5.4287, abs=1e-3)
    assert data["is_lrd"] is True and data["diagnostics"]["beta_opt"] > 0 and data["diagnostics"]["beta_uv"] < -1
    assert "v_shaped_sed" in data["symptoms"]
    names = {c["name"]: c for c in data["criteria"]}
    assert names["kokorev2024"]["passed"] is True
    assert any(t["threshold"] == "< 27.7" for t in names["kokorev2024"]["terms"])
    assert data["actions"] and all({"parameter", "direction", "rule_id", "citations"} <= set(a) for a in data["actions"])
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_advise_with_model_fluxes_finds_the_misfit(tmp_path):
    phot = syn.misspecified("too_little_attenuation", 1, seed=9)
    cols = {"id": ["s"], "redshift": [phot.z[0]]}
    model_cols = {"id": ["s"]}
    for j, b in enumerate(phot.bands):
        cols[f"{b.short}_flux"], cols[f"{b.short}_fluxerr"] = [phot.flux[0, j]], [phot.err[0, j]]
        model_cols[f"best.{b.name}"] = [phot.model[0, j] / 1000.0]   # CIGALE results: best.<filter> in mJy
    import csv
    for name, data in (("obs.csv", cols), ("results.csv", model_cols)):
        with open(tmp_path / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(list(data))
            w.writerow([v[0] for v in data.values()])
    run = _cli("advise", str(tmp_path / "obs.csv"), "--model-fluxes", str(tmp_path / "results.csv"), "--json",
               env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert {"uv_overestimated", "optical_overestimated"} <= set(data["symptoms"])
    top = data["actions"][0]
    assert (top["parameter"], top["direction"]) == ("E_BV_lines", "increase")
    assert data["diagnostics"]["resid_uv"] < -2


def test_advise_catalog_with_a_bad_row(tmp_path):
    lines = LRD_TABLE.read_text().splitlines()
    bad = lines[5].split(",")
    bad[10] = "not-a-number"
    rows = [lines[0], *lines[1:5], ",".join(bad), *lines[6:], "1,2,3"]
    path = tmp_path / "cat.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.parquet"
    run = _cli("advise-catalog", str(path), "--out", str(out), "--workers", "1", "--block-rows", "20", "--quiet",
               env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert f"skipped {path}:6: column" in run.stderr and f"skipped {path}:{len(rows)}: expected" in run.stderr
    assert "sources/s" in run.stdout and "59 sources" in run.stdout
    import pyarrow.parquet as pq

    table = pq.read_table(out).to_pydict()
    assert len(table["id"]) == 59 and {"id", "is_lrd", "beta_uv", "beta_opt", "top_rule"} <= set(table)
    assert table["line"][:5] == [2, 3, 4, 5, 7]                # input order, the bad line 6 left out
    assert sum(bool(x) for x in table["is_lrd"]) >= 53


def test_advise_catalog_keeps_string_ids(tmp_path):
    """Survey catalogs name sources with text ("UNCOVER-DR3:1012"); every row is kept, with its id."""
    lines = LRD_TABLE.read_text().splitlines()
    header = lines[0].split(",")
    k = header.index("id")
    rows = []
    for n, line in enumerate(lines[1:]):
        fields = line.split(",")
        fields[k] = f"UNCOVER-DR3:{fields[k]}" if n % 2 else f"JADES-GS+53.1-27.{n}"
        rows.append(",".join(fields))
    path = tmp_path / "strings.csv"
    path.write_text("\n".join([lines[0], *rows]) + "\n")
    out = tmp_path / "flags.csv"
    run = _cli("advise-catalog", str(path), "--out", str(out), "--workers", "1", "--quiet", "--json",
               env={"ASTRORAG_INDEX_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["sources"] == 60 and report["skipped_rows"] == 0 and report["lrd"] >= 54
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(out).to_pydict()
    assert table["id"][:2] == ["JADES-GS+53.1-27.0", "UNCOVER-DR3:" + lines[2].split(",")[k]]
    assert {"lrd_score", "lrd_votes"} <= set(table) and "kokorev2024" in table["lrd_votes"][0]


def test_fits_flux_units_are_converted_per_column(tmp_path):
    """erg/s/cm2/Hz, nJy and mJy columns in one FITS table give the same verdict as the uJy original; a column
    whose unit is not a flux density is refused by name."""
    import astropy.units as u
    from astropy.table import Table

    ref = read_photometry(LRD_TABLE, ids=["11219"])
    want = analyse(ref).lrd_flag[0]
    cols = {"id": ["11219"], "z": [ref.z[0]]}
    units = [u.erg / u.s / u.cm ** 2 / u.Hz, u.nJy, u.mJy]
    for j, band in enumerate(ref.bands):
        if not np.isfinite(ref.flux[0, j]):
            continue
        unit = units[j % 3]
        cols[f"{band.short}_flux"] = (ref.flux[0, j] * u.uJy).to(unit).reshape(1)
        cols[f"{band.short}_fluxerr"] = (ref.err[0, j] * u.uJy).to(unit).reshape(1)
    Table(cols).write(tmp_path / "mixed.fits")
    phot = read_photometry(tmp_path / "mixed.fits")
    j = phot.band_index("f444w")
    assert phot.flux[0, j] == pytest.approx(ref.flux[0, ref.band_index("f444w")], rel=1e-6)
    assert analyse(phot).lrd_flag[0] == want == 1.0
    bad = Table({"id": ["a"], "z": [6.0], "f444w_flux": [1.0] * u.m, "f444w_fluxerr": [0.1] * u.m})
    bad.write(tmp_path / "bad.ecsv")
    with pytest.raises(InputError, match="column f444w_flux: unit 'm' is not a flux density"):
        read_photometry(tmp_path / "bad.ecsv")


@pytest.mark.parametrize("offset, expected", [(-0.3, "emission_line_deficit"), (+0.3, "emission_line_excess"),
                                              (0.0, None)])
def test_line_bands_against_their_neighbours_give_an_excess_or_a_deficit(offset, expected):
    from dataclasses import replace

    from astrorag.sed.diagnostics import line_bands

    bands = [get_filter(b) for b in ("f090w", "f115w", "f150w", "f200w", "f277w", "f335m", "f356w", "f410m",
                                     "f444w")]
    n = len(bands)
    flux = np.ones((1, n))
    phot = Photometry(np.array(["s"]), np.array([5.0]), bands, flux, np.full((1, n), 0.05),
                      np.zeros((1, n), dtype=bool), np.array([0]))
    holds = line_bands(phot)[0]
    assert holds.any() and (~holds[3:]).any()        # at z = 5 both line bands and line-free neighbours
    model = flux.copy()
    model[0, holds] -= offset        # offset < 0: the model's lines are too strong for its continuum
    # a continuum mismatch over the whole rest optical (F200W onwards at z = 5) is not a line problem
    model[0, 3:] *= 1.2 if expected is None else 1.0
    names = analyse(replace(phot, model=model)).symptom_names(0)
    found = {"emission_line_excess", "emission_line_deficit"} & set(names)
    assert found == ({expected} if expected else set())
    if expected == "emission_line_deficit":
        assert "sfh-faded-burst" in [a.rule_id for a in rank_actions(RuleGraph.from_seeds(), names)]


def test_strong_line_emitters_at_z_7_to_9_are_not_little_red_dots():
    """Blue star-forming galaxies whose [OIII]+H-beta (EWs as published for z ~ 7 emitters) boosts F410M/F444W
    look red in the broad bands; the line term keeps them out while the development LRDs stay in."""
    emitters = analyse(syn.strong_line_emitters(1500, seed=5))
    z, flag = emitters.phot.z, emitters.lrd_flag
    for lo, hi in ((7.0, 8.0), (8.0, 9.0)):
        rows = (z >= lo) & (z < hi)
        assert rows.sum() > 500 and np.mean(flag[rows] == 1) <= 0.02, (lo, np.mean(flag[rows] == 1))
    # what a reader sees: the bands that hold the lines, and the slope without them
    d = emitters.diagnostics
    i = int(np.flatnonzero((z > 8.2) & (z < 8.8))[0])
    assert "f444w" in d.line_boosted_bands(i) and np.isfinite(d.excess_line_free_mag[i])  # F410M is line-free
    assert 0 < d.line_ew_needed_aa[i] <= 6850 and 0 < d.line_ew_fit_aa[i] <= 6850
    real = analyse(read_photometry(LRD_TABLE))
    assert np.mean(real.lrd_flag == 1) >= 0.9
    # a red continuum at the same redshifts is not explained away: the line-free bands rise too
    lrd = analyse(syn.population("lrd", 1500, seed=6))
    high = lrd.phot.z >= 7.0
    assert np.mean(lrd.lrd_flag[high] == 1) >= 0.9


def test_the_medium_band_tells_lines_from_a_red_continuum():
    """A line adds the same EW to F410M and F444W, so it raises the medium band ~2.4x more; a red continuum
    raises both alike. The emitter reading (lines of the published EWs through the filter curves, a
    continuum near the UV power law) keeps emitters and rejects V-shaped continua at z 7-7.5, where F410M and
    F444W both hold [OIII]+H-beta."""
    emitters = analyse(syn.strong_line_emitters(600, seed=7, z_range=(7.0, 7.5)))
    lrds = analyse(syn.population("lrd", 3000, seed=7))
    rows = (lrds.phot.z >= 7.0) & (lrds.phot.z < 7.5) & (lrds.diagnostics.red_excess_mag > 1.0)
    p_emitter, p_lrd = emitters.diagnostics.line_reading_p, lrds.diagnostics.line_reading_p[rows]
    assert rows.sum() > 50 and np.all(np.isfinite(p_emitter)) and np.all(np.isfinite(p_lrd))
    assert np.mean(p_emitter >= 0.01) >= 0.95          # the reading's own rejection level, ~1 % of true emitters
    assert np.mean(p_lrd < 0.01) >= 0.8
    # the EW it finds is the emitters' own: log-normal about 1700 A
    ew = emitters.diagnostics.line_ew_fit_aa
    assert 1000 < np.median(ew) < 2600
    # and the likeness says how LRD-like each is, beside the flag
    assert np.median(emitters.lrd_likeness) < 0.1 and np.median(lrds.lrd_likeness[rows]) > 0.5


def test_advise_catalog_reports_the_line_free_slope_and_the_line_bands(tmp_path):
    out = tmp_path / "advice.csv"
    run = _cli("advise-catalog", str(LRD_TABLE), "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    import csv

    with out.open() as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert {"optical_slope_line_free", "line_boosted_bands", "line_ew_needed_aa"} <= set(next(iter(rows.values())))
    high = rows["40589"]  # z = 8.0: [OIII]+H-beta in F430M and F444W
    assert high["line_boosted_bands"] == "f430m,f444w" and 0 < float(high["line_ew_needed_aa"]) < 6850
    slopes = [float(r["optical_slope_line_free"]) for r in rows.values() if r["optical_slope_line_free"] not in ("", "nan")]
    assert slopes and all(abs(b) < 5 for b in slopes)  # measured only over a lever arm that can carry a slope
