"""Calibrated prediction intervals: split conformal on held-out residuals, adaptive (ACI) online.

Built on MAPIE's ``TimeSeriesRegressor`` (method ``"aci"``, Gibbs & Candès 2021) rather than hand-rolled.
The conformity scores are the model's signed residuals on held-out rows (the version's recorded test
predictions), so the interval is ``prediction + [lower offset, upper offset]`` for any row: MAPIE is called
when the calibration changes, never per request. As realised outcomes arrive, :meth:`observe` rolls the
oldest residuals out (``update``) and moves the miscoverage level toward the nominal one
(``adapt_conformal_inference``), so coverage recovers after a volatility change.

Units: returns in percent, like the model's predictions.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

MIN_CALIBRATION_ROWS = 20


class _GivenPrediction(RegressorMixin, BaseEstimator):
    """An already-fitted "regressor" whose input is the model's prediction: MAPIE then scores residuals
    of any model without refitting it."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> _GivenPrediction:
        self.n_features_in_ = 1
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)[:, 0]


@dataclass(frozen=True)
class Offsets:
    """Interval bounds relative to the prediction (percent), at nominal coverage ``level``."""

    level: float
    lower: float
    upper: float


class ConformalInterval:
    """Split conformal interval around one model's predictions, adapted online (ACI).

    Parameters
    ----------
    predictions, actuals : held-out predictions and realised returns (percent), in time order.
    level : nominal coverage (0.9 = 90 %).
    gamma : ACI step; 0 keeps the split-conformal interval static.
    """

    def __init__(self, predictions: np.ndarray, actuals: np.ndarray, level: float, gamma: float) -> None:
        from mapie.regression import TimeSeriesRegressor

        keep = np.isfinite(predictions) & np.isfinite(actuals)
        x, y = np.asarray(predictions, np.float64)[keep, None], np.asarray(actuals, np.float64)[keep]
        if len(y) < MIN_CALIBRATION_ROWS:
            raise ValueError(
                f"conformal calibration needs {MIN_CALIBRATION_ROWS} held-out rows, got {len(y)}"
            )
        self.level = level
        self.gamma = gamma
        self.calibration_rows = len(y)
        self._mapie = TimeSeriesRegressor(_GivenPrediction().fit(x, y), method="aci", cv="prefit").fit(x, y)
        self._lock = threading.Lock()
        self.observed = 0
        """Realised outcomes rolled in since calibration."""
        self.offsets = self._offsets()

    def _offsets(self) -> Offsets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, bounds = self._mapie.predict(
                np.zeros((1, 1)), confidence_level=self.level, allow_infinite_bounds=True
            )
        return Offsets(self.level, float(bounds[0, 0, 0]), float(bounds[0, 1, 0]))

    def interval(self, prediction: float) -> tuple[float, float]:
        """``(lower, upper)`` of the interval around ``prediction`` (percent)."""
        offsets = self.offsets
        return prediction + offsets.lower, prediction + offsets.upper

    def observe(self, prediction: float, actual: float) -> None:
        """One realised outcome: see :meth:`observe_many`."""
        self.observe_many([prediction], [actual])

    def observe_many(self, predictions: Sequence[float], actuals: Sequence[float]) -> None:
        """Realised outcomes in time order: for each, judge it against the interval of that moment and adapt
        the level (ACI), then roll it into the residuals -- exactly the per-outcome recursion; the served
        offsets are recomputed once at the end. No-op when gamma is 0; non-finite pairs are skipped."""
        if self.gamma == 0:
            return
        pairs = [
            (p, a) for p, a in zip(predictions, actuals, strict=True) if np.isfinite(p) and np.isfinite(a)
        ]
        if not pairs:
            return
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MAPIE warns that update() changed behaviour in 1.0
            for prediction, actual in pairs:
                x, y = np.array([[prediction]]), np.array([actual])
                # First judge the outcome against the interval that was served, then roll it into the scores.
                self._mapie.adapt_conformal_inference(x, y, gamma=self.gamma, confidence_level=self.level)
                self._mapie.update(x, y)
            self.observed += len(pairs)
            self.offsets = self._offsets()
