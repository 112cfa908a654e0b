"""What LightGBM and XGBoost forecasters share: hyperparameters, rounds, early stopping, tuning hooks."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from spxcast.models.base import Forecaster
from spxcast.models.space import SearchSpace

# Called with (iteration, validation RMSE so far); raises to stop the trial (Optuna pruning).
IterationReport = Callable[[int, float], None]


@dataclass(frozen=True)
class TrialBudget:
    """How one tuning trial trains: round cap, early-stopping patience, threads, seed, progress report."""

    max_rounds: int
    early_stopping_rounds: int
    n_jobs: int
    seed: int
    report: IterationReport


class BoostingForecaster(Forecaster):
    """A gradient-boosted tree forecaster.

    Parameters
    ----------
    features, target : see :class:`Forecaster`.
    hyperparams : library hyperparameters (names of the model's ``search_space`` plus any fixed ones).
    n_estimators : maximum boosting rounds.
    early_stopping_rounds : stop when validation RMSE has not improved for this many rounds; ``None``
        trains exactly ``n_estimators`` rounds (the refit of a tuned winner).
    n_jobs : threads.
    seed : random seed of the library.
    """

    search_space: ClassVar[SearchSpace]
    default_hyperparams: ClassVar[dict[str, float | int]]

    def __init__(
        self,
        features: Sequence[str],
        target: str,
        hyperparams: Mapping[str, Any] | None = None,
        n_estimators: int = 1000,
        early_stopping_rounds: int | None = 50,
        n_jobs: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__(features, target)
        self.hyperparams = dict(hyperparams if hyperparams is not None else self.default_hyperparams)
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.seed = seed

    # Tuning hooks: data prepared once, then one call per trial.
    @classmethod
    @abstractmethod
    def prepare_tuning_data(
        cls, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, n_jobs: int
    ) -> Any:
        """Library datasets (binned once) reused by every trial."""

    @classmethod
    @abstractmethod
    def run_trial(cls, data: Any, hyperparams: Mapping[str, Any], budget: TrialBudget) -> tuple[float, int]:
        """Train once with early stopping; returns (best validation RMSE, best number of rounds)."""

    def _state(self) -> dict[str, Any]:
        return {"best_rounds": self.best_rounds_}

    def _restore(self, state: dict[str, Any], directory: Path) -> None:
        self.best_rounds_ = int(state["best_rounds"])
        self._load_booster(directory)

    @abstractmethod
    def _load_booster(self, directory: Path) -> None: ...
