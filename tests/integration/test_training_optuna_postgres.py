"""Two processes share one two-stage Optuna tuning through a real PostgreSQL storage."""

from __future__ import annotations

import multiprocessing

import numpy as np
import optuna
import pytest

from spxcast.models.lightgbm import LightGBMForecaster
from spxcast.models.tuning import TuningConfig, tune_two_stage

PREFIX = "shared-run"


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """3,000 rows of four features and a target that depends on the first (train: the first 2,000)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 4)).astype(np.float32)
    return x, 0.5 * x[:, 0] + rng.standard_normal(3000)


def _tune(storage: str) -> dict[str, object]:
    x, y = _data(0)
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


@pytest.mark.integration
def test_trial_workers_run_one_study_together_and_the_winner_is_the_study_best(postgres_url: str) -> None:
    x, y = _data(1)
    config = TuningConfig(
        trials_coarse=4,
        trials_fine=2,
        max_rounds=40,
        early_stopping_rounds=10,
        storage=postgres_url,
        study_prefix="workers",
        workers=2,
    )
    result = tune_two_stage(LightGBMForecaster, x[:2000], y[:2000], x[2000:], y[2000:], config)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    workers: set[str] = set()
    for stage, wanted in zip(result.stages, (4, 2), strict=True):
        study = optuna.load_study(study_name=f"workers-lightgbm-{stage.name}", storage=postgres_url)
        trials = study.get_trials(states=finished)
        assert wanted <= len(trials) <= wanted + 1, (stage.name, len(trials))
        assert stage.trials == len(trials), "the stage is read back once every worker has finished"
        assert stage.best_value == min(t.value for t in trials if t.value is not None)
        workers |= {str(t.user_attrs["worker"]) for t in trials}
    assert len(workers) == 2, f"both processes ran trials: {workers}"
    assert result.best_value == min(s.best_value for s in result.stages)
