"""LightGBM forecaster (gradient-boosted trees, L2 loss, percent-return target)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from spxcast.models.boosting import BoostingForecaster, IterationReport, TrialBudget
from spxcast.models.space import Range, SearchSpace

BOOSTER_FILE = "booster.txt"

# Stage-1 (coarse) ranges; stage 2 narrows around the stage-1 optimum.
SEARCH_SPACE: SearchSpace = {
    "learning_rate": Range(0.02, 0.3, log=True),
    "num_leaves": Range(8, 128, log=True, integer=True),
    "min_child_samples": Range(20, 2000, log=True, integer=True),
    "feature_fraction": Range(0.3, 1.0),
    "bagging_fraction": Range(0.4, 1.0),
    "lambda_l2": Range(1e-3, 100.0, log=True),
}
DEFAULT_HYPERPARAMS: dict[str, float | int] = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
}
# Dataset construction (binning) parameters: fixed, so one binned Dataset serves every trial.
_DATASET_PARAMS = {"max_bin": 255, "feature_pre_filter": False, "verbose": -1}


def _library_params(hyperparams: Mapping[str, Any], n_jobs: int, seed: int) -> dict[str, Any]:
    return {
        **_DATASET_PARAMS,
        **hyperparams,
        "objective": "regression",
        "metric": "rmse",
        "bagging_freq": 1,
        "num_threads": n_jobs,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
    }


def _callbacks(early_stopping_rounds: int | None, report: IterationReport | None) -> list[Any]:
    callbacks: list[Any] = []
    if early_stopping_rounds is not None:
        callbacks.append(lgb.early_stopping(early_stopping_rounds, verbose=False))
    if report is not None:

        def _report(env: Any) -> None:
            report(env.iteration + 1, float(env.evaluation_result_list[0][2]))

        callbacks.append(_report)
    return callbacks


class LightGBMForecaster(BoostingForecaster):
    """LightGBM regressor; ``best_rounds_`` is the early-stopped (or fixed) number of rounds."""

    kind = "lightgbm"
    search_space = SEARCH_SPACE
    default_hyperparams = DEFAULT_HYPERPARAMS

    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
        train = lgb.Dataset(x, y, params=_DATASET_PARAMS, free_raw_data=True)
        valid = lgb.Dataset(x_valid, y_valid, reference=train, params=_DATASET_PARAMS)
        self.booster_ = lgb.train(
            _library_params(self.hyperparams, self.n_jobs, self.seed),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            callbacks=_callbacks(self.early_stopping_rounds, None),
        )
        self.best_rounds_ = int(self.booster_.best_iteration or self.booster_.current_iteration())

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.predict(x, num_iteration=self.best_rounds_, num_threads=self.n_jobs))

    def feature_importance(self) -> dict[str, float]:
        gains = self.booster_.feature_importance(importance_type="gain", iteration=self.best_rounds_)
        return {name: float(g) for name, g in zip(self.features, gains, strict=True)}

    def _save_files(self, directory: Path) -> None:
        self.booster_.save_model(str(directory / BOOSTER_FILE), num_iteration=self.best_rounds_)

    def _load_booster(self, directory: Path) -> None:
        self.booster_ = lgb.Booster(model_file=str(directory / BOOSTER_FILE))

    @classmethod
    def prepare_tuning_data(
        cls, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, n_jobs: int
    ) -> tuple[lgb.Dataset, lgb.Dataset]:
        train = lgb.Dataset(x, y, params={**_DATASET_PARAMS, "num_threads": n_jobs}, free_raw_data=False)
        valid = lgb.Dataset(x_valid, y_valid, reference=train, params=_DATASET_PARAMS, free_raw_data=False)
        train.construct()
        valid.construct()
        return train, valid

    @classmethod
    def run_trial(
        cls, data: tuple[lgb.Dataset, lgb.Dataset], hyperparams: Mapping[str, Any], budget: TrialBudget
    ) -> tuple[float, int]:
        train, valid = data
        booster = lgb.train(
            _library_params(hyperparams, budget.n_jobs, budget.seed),
            train,
            num_boost_round=budget.max_rounds,
            valid_sets=[valid],
            callbacks=_callbacks(budget.early_stopping_rounds, budget.report),
            keep_training_booster=True,
        )
        best = int(booster.best_iteration or booster.current_iteration())
        return float(booster.best_score["valid_0"]["rmse"]), best
