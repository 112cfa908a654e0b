"""The lineage record: round trip, the settings a retrain uses, model hashing, code version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spxcast.config import Settings
from spxcast.errors import RegistryError
from spxcast.registry.lineage import Lineage, directory_sha256, git_commit, training_config
from spxcast.registry.reproduce import lineage_settings


def _lineage(settings: Settings) -> Lineage:
    return Lineage(
        instrument="SPX500_USD",
        granularity="M5",
        horizon_minutes=60,
        candidate="xgboost",
        pipeline_run_id="full-1",
        features=("ret_log_lag1", "vol_parkinson_w20"),
        lake_versions={"gold.features": 4},
        code_version="0.1.0",
        git_commit=None,
        seeds={"seed": 7},
        split_boundaries={"train": ["2024-01-02T00:00:00+00:00", "2024-06-01T00:00:00+00:00"]},
        training_config=training_config(
            settings.model_copy(
                update={"training": settings.training.model_copy(update={"trials_coarse": 3})}
            )
        ),
        model_sha256="ab" * 32,
    )


def test_round_trip_and_malformed_records(settings: Settings) -> None:
    lineage = _lineage(settings)
    assert Lineage.from_json(lineage.to_json()) == lineage
    with pytest.raises(RegistryError, match="lineage record is malformed"):
        Lineage.from_json('{"candidate": "ar"}')


def test_retrain_settings_come_from_the_lineage_not_the_current_config(settings: Settings) -> None:
    changed = settings.model_copy(
        update={
            "seed": 1,
            "training": settings.training.model_copy(update={"trials_coarse": 50, "oot2_rows": 5}),
        }
    )
    restored = lineage_settings(changed, _lineage(settings))
    assert (restored.instrument, restored.granularity, restored.horizon_minutes, restored.seed) == (
        "SPX500_USD",
        "M5",
        60,
        7,
    )
    assert restored.training.trials_coarse == 3
    assert restored.training.oot2_rows == settings.training.oot2_rows
    assert restored.training.optuna_storage is None, "a retrain never joins a shared Optuna study"
    assert restored.home == changed.home


def test_model_hash_ignores_the_excluded_metadata(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text('{"coef": [1]}')
    (tmp_path / "metadata.json").write_text('{"run_id": "a"}')
    first = directory_sha256(tmp_path, exclude=("metadata.json",))
    (tmp_path / "metadata.json").write_text('{"run_id": "b"}')
    assert directory_sha256(tmp_path, exclude=("metadata.json",)) == first
    assert directory_sha256(tmp_path) != first
    (tmp_path / "model.json").write_text('{"coef": [2]}')
    assert directory_sha256(tmp_path, exclude=("metadata.json",)) != first


def test_git_commit_of_a_checkout_and_of_a_plain_directory(tmp_path: Path) -> None:
    here = git_commit()
    assert here is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", here)
    assert git_commit(tmp_path) is None
