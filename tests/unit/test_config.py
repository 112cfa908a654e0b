from __future__ import annotations

from pathlib import Path

import pytest

from spxcast.config import effective_config, load_settings
from spxcast.errors import ConfigError


def test_precedence_defaults_toml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().horizon_minutes == 30
    config = tmp_path / "spxcast.toml"
    config.write_text("horizon_minutes = 15\nseed = 7\n[training]\ntrials_coarse = 3\n")
    from_file = load_settings(config)
    assert (from_file.horizon_minutes, from_file.seed, from_file.training.trials_coarse) == (15, 7, 3)
    monkeypatch.setenv("SPXCAST_SEED", "8")
    monkeypatch.setenv("SPXCAST_TRAINING__TRIALS_COARSE", "4")
    from_env = load_settings(config)
    assert (from_env.horizon_minutes, from_env.seed, from_env.training.trials_coarse) == (15, 8, 4)
    from_flags = load_settings(config, seed=9, **{"training.trials_coarse": 5})
    assert (from_flags.seed, from_flags.training.trials_coarse) == (9, 5)


def test_an_explicit_config_file_applies_to_that_call_only(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text("seed = 7\n")
    assert load_settings(config).seed == 7
    assert load_settings().seed == 42, "a config file passed once must not leak into later calls"


def test_spxcast_toml_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "spxcast.toml").write_text('granularity = "M5"\n')
    assert load_settings().granularity == "M5"


def test_home_derives_store_locations(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "h")
    assert settings.db_url() == f"sqlite:///{tmp_path / 'h' / 'spxcast.db'}"
    assert settings.lake_root() == str(tmp_path / "h" / "lake")
    assert settings.tracking_uri().startswith("sqlite:///") and settings.tracking_uri().endswith("mlflow.db")
    assert settings.mlflow_artifact_root() == str(tmp_path / "h" / "mlartifacts")


def test_a_tracking_server_keeps_the_artifacts_unless_a_root_is_set(tmp_path: Path) -> None:
    server = {"registry.tracking_uri": "http://mlflow:5000"}
    assert load_settings(home=tmp_path, **server).mlflow_artifact_root() is None
    chosen = load_settings(home=tmp_path, **server, **{"registry.artifact_root": "s3://b/mlflow"})
    assert chosen.mlflow_artifact_root() == "s3://b/mlflow"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"granularity": "M7X"}, "granularity"),
        ({"horizon_minutes": 0}, "horizon_minutes"),
        ({"training.split_fractions": (0.5, 0.5, 0.5, 0.5)}, "sum to 1"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_settings_are_clear_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**overrides)


def test_horizon_must_be_whole_bars() -> None:
    with pytest.raises(ConfigError, match="whole number"):
        _ = load_settings(granularity="M15", horizon_minutes=20).horizon_bar_count
    assert load_settings(granularity="M5", horizon_minutes=30).horizon_bar_count == 6


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPXCAST_OANDA__TOKEN", "super-secret-token")
    settings = load_settings(**{"db.url": "postgresql+psycopg://spx:hunter2@db:5432/app"})
    assert settings.oanda.token is not None
    shown = str(effective_config(settings))
    assert "super-secret-token" not in shown and "hunter2" not in shown
    assert "spx:****@db" in shown
