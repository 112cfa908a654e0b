"""Two-stage tuning: stage 2 narrows inside stage 1 around its optimum; runs are reproducible."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spxcast.errors import ModelError
from spxcast.models.lightgbm import LightGBMForecaster
from spxcast.models.space import Range, narrow, space_from_dict
from spxcast.models.train import labelled_frame, train_candidate
from spxcast.models.tuning import TuningConfig, tune_two_stage
from spxcast.models.xgboost import XGBoostForecaster
from training_factories import gold_frame, spec

SPACE = {
    "rate": Range(0.01, 0.3, log=True),
    "leaves": Range(8, 256, log=True, integer=True),
    "fraction": Range(0.3, 1.0),
    "depth": Range(2, 10, integer=True),
}


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0.05, 1.0))
def test_narrowed_ranges_lie_inside_and_contain_the_optimum(
    a: float, b: float, c: float, d: float, f: float
) -> None:
    optimum = {
        "rate": min(0.3, max(0.01, math.exp(math.log(0.01) + a * (math.log(0.3) - math.log(0.01))))),
        "leaves": round(8 + b * 248),
        "fraction": 0.3 + c * 0.7,
        "depth": round(2 + d * 8),
    }
    fine = narrow(SPACE, optimum, factor=f)
    for name, r in fine.items():
        coarse = SPACE[name]
        assert coarse.low <= r.low <= optimum[name] <= r.high <= coarse.high, name
        assert r.log == coarse.log
        assert r.integer == coarse.integer


def test_narrowing_shrinks_and_refuses_an_outside_optimum() -> None:
    fine = narrow(SPACE, {"rate": 0.05, "leaves": 31, "fraction": 0.65, "depth": 6}, factor=0.3)
    assert fine["fraction"].high - fine["fraction"].low == pytest.approx(0.3 * 0.7)
    assert math.log(fine["rate"].high / fine["rate"].low) == pytest.approx(0.3 * math.log(30))
    with pytest.raises(ModelError, match="outside"):
        narrow(SPACE, {"rate": 0.5, "leaves": 31, "fraction": 0.65, "depth": 6})


@pytest.mark.parametrize("model", [LightGBMForecaster, XGBoostForecaster])
def test_two_stage_tuning_narrows_around_the_stage_one_optimum(model: type) -> None:
    gold, _ = gold_frame(6000, n_features=5, signal="planted", seed=11)
    frame = labelled_frame(gold, spec("lightgbm", n_features=5))
    x = frame.select(pl.col(f"f{i}" for i in range(5))).to_numpy()
    y = frame["target_ret_30m_pct"].to_numpy()
    config = TuningConfig(trials_coarse=4, trials_fine=3, max_rounds=100, early_stopping_rounds=10, seed=3)
    result = tune_two_stage(model, x[:4000], y[:4000], x[4100:], y[4100:], config)
    coarse, fine = result.stages
    assert coarse.trials == 4
    assert fine.trials == 3
    assert coarse.space == model.search_space
    for name, r in fine.space.items():
        outer = coarse.space[name]
        assert outer.low <= r.low <= coarse.best_params[name] <= r.high <= outer.high
        assert r.high - r.low < outer.high - outer.low
    assert fine.best_value <= coarse.best_value  # stage 2 starts from the stage-1 optimum
    assert result.best_value == min(coarse.best_value, fine.best_value)
    assert space_from_dict(result.to_dict()["stages"][1]["space"]) == fine.space


def test_tuning_uses_only_the_most_recent_rows_when_asked() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3000, 3)).astype(np.float32), rng.standard_normal(3000)
    config = TuningConfig(
        trials_coarse=1, trials_fine=0, max_rounds=20, early_stopping_rounds=5, tune_max_rows=1000
    )
    result = tune_two_stage(LightGBMForecaster, x, y, x[:500], y[:500], config)
    assert result.tuned_rows == 1000
    assert len(result.stages) == 1


@pytest.mark.parametrize("model", ["lightgbm", "xgboost", "ar"])
def test_same_data_config_and_seed_give_identical_predictions(model: str) -> None:
    gold, _ = gold_frame(8000, n_features=5, signal="planted", seed=2)
    first = train_candidate(gold, spec(model, n_features=5, oot2_rows=500))
    second = train_candidate(gold, spec(model, n_features=5, oot2_rows=500))
    assert first.predictions.equals(second.predictions)
    assert first.tuning == second.tuning
    assert first.predictions.filter(pl.col("split") == "test")[model].std() > 0


def test_the_pruner_stops_unpromising_trials() -> None:
    gold, _ = gold_frame(6000, n_features=5, signal="planted", seed=11)
    frame = labelled_frame(gold, spec("lightgbm", n_features=5))
    x = frame.select(pl.col(f"f{i}" for i in range(5))).to_numpy()
    y = frame["target_ret_30m_pct"].to_numpy()
    config = TuningConfig(trials_coarse=15, trials_fine=0, max_rounds=200, early_stopping_rounds=20, seed=1)
    coarse = tune_two_stage(LightGBMForecaster, x[:4000], y[:4000], x[4100:], y[4100:], config).stages[0]
    assert coarse.trials == 15
    assert 0 < coarse.pruned < 15


def test_trial_workers_need_a_shared_storage() -> None:
    x = np.zeros((50, 2), np.float32)
    config = TuningConfig(trials_coarse=2, trials_fine=0, workers=2)
    with pytest.raises(ModelError, match=r"training\.optuna_storage"):
        tune_two_stage(LightGBMForecaster, x, x[:, 0], x, x[:, 0], config)
