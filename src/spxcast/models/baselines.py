"""Naive baselines every candidate is reported next to.

* ``zero`` — predicts a zero forward return (the martingale forecast; R²_OOS is measured against it).
* ``mean`` — predicts the mean forward return of the training split.
* ``persistence`` — predicts the last observed H-minute return: the return from the close H minutes
  before bar t to bar t's close, known at t's close (the gold feature
  :func:`spxcast.features.lags.lag_name` with k=1).
  A missing lag (no bar H minutes earlier) predicts zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spxcast.errors import ModelError
from spxcast.models.base import Forecaster


class _ConstantForecaster(Forecaster):
    """Predicts one value learned from the training split (``value_``, percent)."""

    requires_features = False

    def __init__(self, target: str) -> None:
        super().__init__((), target)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(x.shape[0], self.value_)

    def _state(self) -> dict[str, Any]:
        return {"value": self.value_}

    def _restore(self, state: dict[str, Any], directory: Path) -> None:
        self.value_ = float(state["value"])


class ZeroForecaster(_ConstantForecaster):
    """Always predicts a zero forward return."""

    kind = "zero"

    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
        self.value_ = 0.0


class MeanForecaster(_ConstantForecaster):
    """Predicts the training split's mean forward return."""

    kind = "mean"

    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
        self.value_ = float(y.mean())


class PersistenceForecaster(Forecaster):
    """Predicts the last observed H-minute return (the one lag column it is given)."""

    kind = "persistence"

    def __init__(self, features: Sequence[str], target: str) -> None:
        super().__init__(features, target)
        if len(self.features) != 1:
            raise ModelError(
                "PersistenceForecaster reads exactly one column (the lag-1 horizon return); "
                f"got {list(features)}"
            )

    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
        return None

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(x[:, 0].astype(np.float64), nan=0.0)

    def _state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any], directory: Path) -> None:
        return None
