from pathlib import Path

import pytest

from astrorag.errors import ConfigError
from astrorag.settings import Settings


def test_precedence_defaults_toml_env_overrides(tmp_path):
    config = tmp_path / "astrorag.toml"
    config.write_text('k = 3\nindex_name = "fromfile"\nchunk_size = 300\n')
    env = {"ASTRORAG_K": "5", "ASTRORAG_INDEX_DIR": str(tmp_path / "ix")}
    s = Settings.load(config_file=config, env=env, index_name="fromcli")
    assert s.k == 5                      # env beats the file
    assert s.chunk_size == 300           # the file beats the default
    assert s.index_name == "fromcli"     # an override beats everything
    assert s.index_path == tmp_path / "ix" / "fromcli"
    assert s.num_ctx == Settings().num_ctx


def test_astrorag_config_env_and_section(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[astrorag]\nyear_min = 2024\nprogress = false\n')
    s = Settings.load(env={"ASTRORAG_CONFIG": str(config)})
    assert s.year_min == 2024 and s.progress is False


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
    assert s.year_max == 2025 and s.progress is False and s.category is None
    assert isinstance(s.index_dir, Path)


def test_fingerprint_tracks_answer_settings():
    assert Settings().fingerprint() == Settings(progress=False).fingerprint()
    assert Settings().fingerprint() != Settings(k=9).fingerprint()
