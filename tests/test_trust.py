"""Trust boundaries: nothing a received folder or file carries decides where data, keys or models go."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from astrorag.errors import AstroRagError, ConfigError
from astrorag.fit.base import FitResult
from astrorag.fit.cache import FitCache
from astrorag.fit.spec import baseline
from astrorag.settings import Settings, provenance


def _cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "astrorag", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, **(env or {})})


def test_a_settings_file_in_the_working_folder_is_not_read_and_the_run_says_so(tmp_path, monkeypatch):
    planted = tmp_path / "astrorag.toml"
    planted.write_text('openai_url = "http://attacker.invalid:9/v1"\nads_url = "http://attacker.invalid:9"\n'
                       f'index_dir = "{tmp_path / "planted"}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASTRORAG_CONFIG", raising=False)
    settings = Settings.load(env={})
    assert settings.llm.openai.url != "http://attacker.invalid:9/v1"
    assert "planted" not in str(settings.storage.index_dir)
    line = provenance(env={}).line()
    assert "./astrorag.toml in this folder was NOT read" in line and "--config astrorag.toml" in line
    # Named, it is read, and the line says which file set which settings.
    named = provenance("astrorag.toml", env={})
    assert named.file_keys == ("ads_url", "index_dir", "openai_url") and named.ignored_local is None
    assert named.line() == "settings: astrorag.toml (ads_url, index_dir, openai_url)"
    assert Settings.load("astrorag.toml", env={}).llm.openai.url == "http://attacker.invalid:9/v1"


def test_the_cli_states_an_unread_local_settings_file_before_doing_anything(tmp_path):
    (tmp_path / "astrorag.toml").write_text('openai_url = "http://attacker.invalid:9/v1"\n')
    run = _cli("rules", "list", "--contested", cwd=tmp_path,
               env={"HOME": str(tmp_path / "home"), "ASTRORAG_INDEX_DIR": str(tmp_path / "idx")})
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[0].startswith("settings: ./astrorag.toml in this folder was NOT read")


@pytest.mark.parametrize("key, value, limit", [("max_tokens", 1e12, "at most 131072"),
                                               ("temperature", math.nan, "finite"),
                                               ("num_ctx", 10 ** 12, "at most 1048576"),
                                               ("candidates", 10 ** 9, "at most 10000"),
                                               ("llm_timeout_s", math.nan, "finite")])
def test_numbers_from_settings_and_bundles_are_bounded_with_the_limit_in_the_message(key, value, limit):
    with pytest.raises(ConfigError, match=limit):
        Settings(**{key: value})


def test_an_inverted_year_range_is_refused():
    with pytest.raises(ConfigError, match="year_min 2025 is after year_max 2020"):
        Settings(year_min=2025, year_max=2020)


def test_flags_outside_their_limits_are_one_line_errors(tmp_path):
    run = _cli("serve", "--port", "99999", cwd=tmp_path)
    assert run.returncode == 2 and "99999 is outside the limits 0 - 65535" in run.stderr
    assert "Traceback" not in run.stderr
    table = tmp_path / "c.csv"
    table.write_text("id,z,f444w_flux,f444w_fluxerr\n1,5,1,0.1\n")
    for rows in ("0", "-5"):
        run = _cli("advise-catalog", str(table), "--block-rows", rows, cwd=tmp_path)
        assert run.returncode == 2 and "outside the limits 1 - 10000000" in run.stderr


def test_serve_refuses_an_empty_password():
    from astrorag.ui import serve

    for auth in ("u:", ":p"):
        with pytest.raises(AstroRagError, match="neither empty"):
            serve(Settings(), auth=auth)


def _result(chi2=7.0):
    return FitResult("bagpipes", baseline(5.0), [1.0, 2.0, float("nan")], chi2, 12, 5, -20.0, 3.0,
                     {"dust:Av": {"p16": 0.1, "p50": 0.2, "p84": 0.3}}, priors={"dust:Av": (0.0, 0.891, "linear")},
                     inflation={"p16": 1.0, "p50": 1.1, "p84": 1.2})


def test_the_fit_cache_believes_only_what_it_wrote_itself(tmp_path):
    cache = FitCache(tmp_path / "fits")
    key = "ab" + "0" * 62
    cache.put(key, _result())
    again = cache.get(key, baseline(5.0))
    assert again is not None and again.chi2 == 7.0 and math.isnan(again.model_ujy[2])
    assert again.priors["dust:Av"] == (0.0, 0.891, "linear") and cache.hits == 1 and not cache.refused
    assert oct((tmp_path / "fits" / ".key").stat().st_mode & 0o777) == "0o600"
    # A planted entry: schema-valid, "adequate", but not signed by this cache's key.
    path = tmp_path / "fits" / "ab" / f"{key}.json"
    entry = json.loads(path.read_text())
    entry["fit"]["chi2"] = 0.1
    path.write_text(json.dumps(entry))
    fresh = FitCache(tmp_path / "fits")
    assert fresh.get(key, baseline(5.0)) is None and "digest is not this cache's" in fresh.refused[0]
    # Another cache's entry (its own key) is foreign here.
    other = FitCache(tmp_path / "other")
    other.put(key, _result())
    path.write_text((tmp_path / "other" / "ab" / f"{key}.json").read_text())
    assert FitCache(tmp_path / "fits").get(key, baseline(5.0)) is None
    # Damaged entries of every shape are refused with a reason, never a traceback.
    for damaged in ("[]", '{"fit": [], "digest": "x", "written": 1}', "{" * 100_000,
                    '{"fit": {"chi2": "many"}, "digest": "x", "written": 1}', "not json"):
        path.write_text(damaged)
        refusing = FitCache(tmp_path / "fits")
        assert refusing.get(key, baseline(5.0)) is None and refusing.refused, damaged[:20]
    assert "not believed and refitted" in refusing.summary()


def test_replay_never_takes_the_embedding_model_from_a_bundle():
    from astrorag.bundle_schema import REPLAYED_SETTINGS

    assert "embedding_model" not in REPLAYED_SETTINGS
    assert {"openai_url", "ollama_host", "index_dir", "ads_url"}.isdisjoint(REPLAYED_SETTINGS)
    assert np.isfinite(Settings().llm.temperature)


@pytest.mark.slow
def test_three_ingests_started_together_into_a_new_index_keep_every_record_once(tmp_path):
    from pathlib import Path

    lines = (Path(__file__).parent / "data" / "abstracts_small.jsonl").read_text().splitlines()[:24]
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.jsonl"
        part.write_text("\n".join(lines[i * 8:(i + 1) * 8]) + "\n")
        parts.append(part)
    env = {**os.environ, "ASTRORAG_INDEX_DIR": str(tmp_path / "idx"), "ASTRORAG_INDEX_NAME": "together"}
    runs = [subprocess.Popen([sys.executable, "-m", "astrorag", "ingest", "files", str(p)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) for p in parts]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err
        assert "damaged" not in out + err
    check = subprocess.run([sys.executable, "-m", "astrorag", "index", "check", "--json"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    from astrorag.index.store import Index

    with Index.open(Settings(index_dir=tmp_path / "idx", index_name="together")) as index:
        assert index.count_documents() == 24
        assert len(set(index.chunk_ids())) == index.count_chunks() == index.vectors.count()


def test_mcp_tools_check_every_argument_before_any_work(small_settings):
    from astrorag.errors import InputError
    from astrorag.tools import MAX_QUERY_CHARS, Tools

    tools = Tools(small_settings)
    try:
        cases = [(lambda: tools.rules_for_symptoms("v shape " * 150_000), "at most 2000 characters"),
                 (lambda: tools.search_literature("x" * (MAX_QUERY_CHARS + 1)), "at most 2000 characters"),
                 (lambda: tools.search_literature("dust", k=float("inf")), "finite"),
                 (lambda: tools.ask({"question": "x"}), "valid string"),
                 (lambda: tools.ask(None), "question is required"),
                 (lambda: tools.search_literature("dust", k=500), "less than or equal to 50"),
                 (lambda: tools.advise_sed("id,z\n1,5\n", redshift=float("nan")), "finite")]
        for call, message in cases:
            with pytest.raises(InputError, match=message):
                call()
        assert tools._assistant is None      # nothing was opened, retrieved or generated for a bad call
    finally:
        tools.close()


def test_damaged_learning_state_gives_a_clear_error_and_changes_nothing(tmp_path):
    from astrorag.errors import InputError
    from astrorag.workflows.rules import COUNTED_RECORDS, learn_rules, undo_learn

    settings = Settings(index_dir=tmp_path / "idx", index_name="learn")
    log = tmp_path / "fits.jsonl"
    log.write_text(json.dumps({"source_id": "s", "symptoms": ["v_shaped_sed"], "rule_id": "lrd-agn-red-continuum",
                               "action": {"parameter": "EBV", "module": "skirtor2016", "direction": "increase"},
                               "chi2_before": 9.0, "chi2_after": 2.0}) + "\n")
    learn_rules(settings, log)
    counted = settings.index_path / COUNTED_RECORDS
    counted.write_text('["abc", ')        # truncated
    graph_before = (settings.index_path / "rules.json").read_bytes() if (settings.index_path /
                                                                          "rules.json").exists() else None
    with pytest.raises(InputError, match="is damaged .*nothing was changed"):
        learn_rules(settings, log)
    if graph_before is not None:
        assert (settings.index_path / "rules.json").read_bytes() == graph_before
    (settings.index_path / (COUNTED_RECORDS + ".before-learn")).unlink()
    with pytest.raises(InputError, match="cannot undo: .*missing"):
        undo_learn(settings)


def test_records_are_stored_without_control_characters_so_no_output_can_show_them():
    from astrorag.index.types import Document

    doc = Document.create(title="Dots \x1b[2J\x1b]0;owned\x07 glow", abstract="compact \x1b[8mhidden\x1b[0m\x00 red",
                          authors=("I, J\x9b31m",), arxiv_id="2501.00008")
    assert (doc.title, doc.abstract, doc.authors) == ("Dots glow", "compact hidden red", ("I, J31m",))
