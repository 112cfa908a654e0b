"""Two processes share one two-stage Optuna tuning through a real PostgreSQL storage."""

from __future__ import annotations

import multiprocessing

import numpy as np
import optuna
import pytest

from spxcast.models.lightgbm import LightGBMForecaster
from spxcast.models.tuning import TuningConfig, tune_two_stage

PREFIX = "shared-run"


def _tune(storage: str) -> dict[str, object]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 4)).astype(np.float32)
    y = 0.5 * x[:, 0] + rng.standard_normal(3000)
    config = TuningConfig(
        trials_coarse=6,
        trials_fine=4,
        max_rounds=60,
        early_stopping_rounds=10,
        storage=storage,
        study_prefix=PREFIX,
    )
    return tune_two_stage(LightGBMForecaster, x[:2000], y[:2000], x[2000:], y[2000:], config).to_dict()


@pytest.mark.integration
def test_two_processes_share_one_study_in_postgresql(postgres_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        first, second = pool.map(_tune, [postgres_url, postgres_url])
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for stage, wanted in (("coarse", 6), ("fine", 4)):
        study = optuna.load_study(study_name=f"{PREFIX}-lightgbm-{stage}", storage=postgres_url)
        count = len(study.get_trials(states=finished))
        # each process stops once the shared study holds the wanted count: far fewer than 2 x wanted
        assert wanted <= count <= wanted + 1, (stage, count)
    # both processes searched the same stage-2 ranges (recorded once in the shared study)
    assert first["stages"][1]["space"] == second["stages"][1]["space"]  # type: ignore[index]
    assert first["stages"][0]["trials"] >= 6
    assert second["stages"][0]["trials"] >= 6
