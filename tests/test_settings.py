from pathlib import Path

import pytest

from astrorag.errors import ConfigError
from astrorag.settings import Settings


def test_precedence_defaults_toml_env_overrides(tmp_path):
    config = tmp_path / "astrorag.toml"
    config.write_text('k = 3\nindex_name = "fromfile"\nchunk_size = 300\n')
    env = {"ASTRORAG_K": "5", "ASTRORAG_INDEX_DIR": str(tmp_path / "ix")}
    s = Settings.load(config_file=config, env=env, index_name="fromcli")
    assert s.retrieval.k == 5                      # env beats the file
    assert s.ingest.chunk_size == 300           # the file beats the default
    assert s.storage.index_name == "fromcli"     # an override beats everything
    assert s.index_path == tmp_path / "ix" / "fromcli"
    assert s.llm.num_ctx == Settings().llm.num_ctx


def test_astrorag_config_env_and_section(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[astrorag]\nyear_min = 2024\nprogress = false\n')
    s = Settings.load(env={"ASTRORAG_CONFIG": str(config)})
    assert s.retrieval.year_min == 2024 and s.progress is False


def test_bad_values_name_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="k='many' from environment is not a valid int"):
        Settings.load(env={"ASTRORAG_K": "many"})
    with pytest.raises(ConfigError, match="unknown setting.*colour.*valid names"):
        Settings().replace(colour="red")
    with pytest.raises(ConfigError, match="chunk_overlap"):
        Settings(chunk_size=100, chunk_overlap=100)
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(config_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("k = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(config_file=bad)


def test_optional_and_bool_coercion():
    s = Settings.load(env={"ASTRORAG_YEAR_MAX": "2025", "ASTRORAG_PROGRESS": "no", "ASTRORAG_CATEGORY": ""})
    assert s.retrieval.year_max == 2025 and s.progress is False and s.retrieval.category is None
    assert isinstance(s.storage.index_dir, Path)


def test_fingerprint_tracks_answer_settings():
    assert Settings().fingerprint() == Settings(progress=False).fingerprint()
    assert Settings().fingerprint() != Settings(k=9).fingerprint()


def test_settings_come_in_groups_that_toml_tables_and_flat_keys_both_reach(tmp_path):
    from astrorag.settings import LEAVES, RetrievalSettings

    config = tmp_path / "astrorag.toml"
    config.write_text('k = 4\n[llm]\nnum_ctx = 4096\n[llm.ollama]\nhost = "http://gpu:11434"\n'
                      '[fit.sampler]\nn_live = 80\n')
    s = Settings.load(config_file=config, env={"ASTRORAG_FIT_STEPS": "1", "ASTRORAG_GGUF_MODEL": "m.gguf"})
    assert (s.retrieval.k, s.llm.num_ctx, s.llm.ollama.host) == (4, 4096, "http://gpu:11434")
    assert (s.fit.sampler.n_live, s.fit.steps, s.llm.llamacpp.model) == (80, 1, "m.gguf")
    # a group object and a flat key give the same settings; a change rebuilds its group once, checked whole
    assert Settings(retrieval=RetrievalSettings(k=9)) == Settings(k=9)
    assert Settings(chunk_size=20, chunk_overlap=10).ingest.chunk_overlap == 10
    assert Settings().get("n_live") == 200 and Settings().to_dict()["ollama_model"] == s.llm.ollama.model
    assert all(leaf.help for leaf in LEAVES.values())          # each says what it means
    bad = tmp_path / "bad.toml"
    bad.write_text("[llm.ollama]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting llm.ollama.port .*\[llm.ollama\] table takes: "
                                          r"llm.ollama.host, llm.ollama.hosts, llm.ollama.model$"):
        Settings.load(config_file=bad)
    bad.write_text("[llm]\nollama = 3\n")
    with pytest.raises(ConfigError, match=r"llm.ollama .* is a group of settings, not a value: .*\[llm.ollama\]"):
        Settings.load(config_file=bad)
    with pytest.raises(ConfigError, match="unknown setting.s. nlive in override; did you mean n_live\\? valid"):
        Settings().replace(nlive=50)
    with pytest.raises(ConfigError, match="n_live must be at least 10, got 5; set ASTRORAG_N_LIVE or --n-live"):
        Settings(n_live=5)
    with pytest.raises(ConfigError, match="retrieval_mode='sparse' is not one of dense, bm25, fused"):
        Settings.load(env={"ASTRORAG_RETRIEVAL_MODE": "sparse"})


def test_the_fit_group_does_not_change_an_answers_fingerprint():
    assert Settings(n_live=50, fit_steps=1).fingerprint() == Settings().fingerprint()


def test_cli_flags_are_generated_from_the_settings_and_reach_them(tmp_path):
    from astrorag.cli import build_parser, settings_from
    from astrorag.settings import LEAVES

    parser = build_parser()
    args = parser.parse_args(["fit", "phot.csv", "--n-live", "60", "--steps", "1", "--index-dir", str(tmp_path)])
    s = settings_from(args)
    assert (s.fit.sampler.n_live, s.fit.steps, s.fit.width, s.storage.index_dir) == (60, 1, 3, tmp_path)
    ask = parser._subparsers._group_actions[0].choices["ask"]
    flags = {a.option_strings[0]: a for a in ask._actions if a.option_strings}
    for key in ("k", "retrieval_mode", "num_ctx", "ollama_host", "llm_timeout_s"):
        leaf = LEAVES[key]
        assert flags[leaf.flag].dest == key and leaf.env in flags[leaf.flag].help
    assert flags["--mode"].choices == ("dense", "bm25", "fused")


def test_the_guide_prints_the_settings_the_code_has():
    from astrorag.settings import settings_markdown

    guide = (Path(__file__).parent.parent / "docs" / "GUIDE.md").read_text()
    assert settings_markdown() in guide


def test_a_mistyped_flag_gets_the_subcommands_usage_and_the_closest_flag(capsys):
    from astrorag.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["advise-catalog", "catalog.csv", "--out", "x.csv", "--workres", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("usage: astrorag advise-catalog")
    assert "--workres: did you mean --workers?" in err
