"""XGBoost forecaster (the ``xgboost-cpu`` distribution; histogram trees, squared error)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from spxcast.models.boosting import BoostingForecaster, IterationReport, TrialBudget
from spxcast.models.space import Range, SearchSpace

BOOSTER_FILE = "booster.json"

# Stage-1 (coarse) ranges; stage 2 narrows around the stage-1 optimum.
SEARCH_SPACE: SearchSpace = {
    "eta": Range(0.02, 0.3, log=True),
    "max_depth": Range(2, 8, integer=True),
    "min_child_weight": Range(1.0, 1000.0, log=True),
    "subsample": Range(0.4, 1.0),
    "colsample_bytree": Range(0.3, 1.0),
    "lambda": Range(1e-3, 100.0, log=True),
}
DEFAULT_HYPERPARAMS: dict[str, float | int] = {
    "eta": 0.05,
    "max_depth": 6,
    "min_child_weight": 50.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
}
_MAX_BIN = 256


def _library_params(hyperparams: Mapping[str, Any], n_jobs: int, seed: int) -> dict[str, Any]:
    return {
        **hyperparams,
        "objective": "reg:squarederror",
        "eval_metric": "rmse",
        "tree_method": "hist",
        "max_bin": _MAX_BIN,
        "nthread": n_jobs,
        "seed": seed,
        "verbosity": 0,
    }


class _Report(xgb.callback.TrainingCallback):
    """Passes each round's validation RMSE to a tuning report (which may raise to prune)."""

    def __init__(self, report: IterationReport) -> None:
        super().__init__()
        self.report = report

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        self.report(epoch + 1, float(evals_log["valid"]["rmse"][-1]))
        return False


def _train(
    params: dict[str, Any],
    train: xgb.DMatrix,
    valid: xgb.DMatrix,
    rounds: int,
    early_stopping_rounds: int | None,
    report: IterationReport | None,
) -> xgb.Booster:
    return xgb.train(
        params,
        train,
        num_boost_round=rounds,
        evals=[(valid, "valid")],
        early_stopping_rounds=early_stopping_rounds,
        callbacks=[_Report(report)] if report is not None else None,
        verbose_eval=False,
    )


def _best_rounds(booster: xgb.Booster, early_stopping: bool) -> int:
    if early_stopping and hasattr(booster, "best_iteration"):
        return int(booster.best_iteration) + 1
    return int(booster.num_boosted_rounds())


class XGBoostForecaster(BoostingForecaster):
    """XGBoost regressor; ``best_rounds_`` is the early-stopped (or fixed) number of rounds."""

    kind = "xgboost"
    search_space = SEARCH_SPACE
    default_hyperparams = DEFAULT_HYPERPARAMS

    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
        train = xgb.QuantileDMatrix(x, y, max_bin=_MAX_BIN, nthread=self.n_jobs)
        valid = xgb.QuantileDMatrix(x_valid, y_valid, ref=train, nthread=self.n_jobs)
        booster = _train(
            _library_params(self.hyperparams, self.n_jobs, self.seed),
            train,
            valid,
            self.n_estimators,
            self.early_stopping_rounds,
            None,
        )
        self.best_rounds_ = _best_rounds(booster, self.early_stopping_rounds is not None)
        self.booster_ = booster[: self.best_rounds_]

    def _predict(self, x: np.ndarray) -> np.ndarray:
        self.booster_.set_param({"nthread": self.n_jobs})
        return np.asarray(self.booster_.inplace_predict(x))

    def feature_importance(self) -> dict[str, float]:
        gains = self.booster_.get_score(importance_type="total_gain")
        return {name: float(np.sum(gains.get(f"f{i}", 0.0))) for i, name in enumerate(self.features)}

    def _save_files(self, directory: Path) -> None:
        self.booster_.save_model(str(directory / BOOSTER_FILE))

    def _load_booster(self, directory: Path) -> None:
        self.booster_ = xgb.Booster(model_file=str(directory / BOOSTER_FILE))

    @classmethod
    def prepare_tuning_data(
        cls, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, n_jobs: int
    ) -> tuple[xgb.QuantileDMatrix, xgb.QuantileDMatrix]:
        train = xgb.QuantileDMatrix(x, y, max_bin=_MAX_BIN, nthread=n_jobs)
        return train, xgb.QuantileDMatrix(x_valid, y_valid, ref=train, nthread=n_jobs)

    @classmethod
    def run_trial(
        cls,
        data: tuple[xgb.QuantileDMatrix, xgb.QuantileDMatrix],
        hyperparams: Mapping[str, Any],
        budget: TrialBudget,
    ) -> tuple[float, int]:
        train, valid = data
        params = _library_params(hyperparams, budget.n_jobs, budget.seed)
        booster = _train(params, train, valid, budget.max_rounds, budget.early_stopping_rounds, budget.report)
        return float(booster.best_score), _best_rounds(booster, True)
