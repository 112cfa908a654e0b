"""Autoregressive forecaster: OLS of the forward H-minute return on lagged H-minute returns.

The regressors are the lags of the target observable at t (:mod:`spxcast.features.lags`, gold features):
the H-minute return ending at t, at t-H, t-2H…, plus optional exogenous columns (news signals). The order
p (how many lags) is chosen by validation RMSE among 1..len(lag_features); exogenous columns enter every
order. A missing regressor (no bar H·k minutes earlier, no news) is taken as zero, the unconditional
return.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spxcast.errors import ModelError
from spxcast.models.base import Forecaster


def _design(x: np.ndarray) -> np.ndarray:
    clean = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.hstack([np.ones((clean.shape[0], 1)), clean])


class ARForecaster(Forecaster):
    """OLS AR(p) with optional exogenous regressors; ``order_`` is the chosen p.

    Parameters
    ----------
    lag_features : lag columns, lag 1 first (``lag1_ret_30m_pct``, ``lag2_…``).
    target : label column (percent).
    exogenous : extra regressors used at every order (e.g. news signals).
    """

    kind = "ar"

    def __init__(self, lag_features: Sequence[str], target: str, exogenous: Sequence[str] = ()) -> None:
        self.lag_features = tuple(lag_features)
        self.exogenous = tuple(exogenous)
        if not self.lag_features:
            raise ModelError("ARForecaster needs at least one lag column")
        super().__init__((*self.lag_features, *self.exogenous), target)

    def _columns(self, order: int) -> np.ndarray:
        n_lags = len(self.lag_features)
        return np.r_[np.arange(order), np.arange(n_lags, n_lags + len(self.exogenous))].astype(int)

    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None:
        design, design_valid = _design(x), _design(x_valid)
        self.validation_rmse_by_order_: dict[int, float] = {}
        best: tuple[float, int, np.ndarray] | None = None
        for order in range(1, len(self.lag_features) + 1):
            cols = np.r_[0, self._columns(order) + 1]
            beta, *_ = np.linalg.lstsq(design[:, cols], y, rcond=None)
            rmse = float(np.sqrt(np.mean((design_valid[:, cols] @ beta - y_valid) ** 2)))
            self.validation_rmse_by_order_[order] = rmse
            if best is None or rmse < best[0]:
                best = (rmse, order, beta)
        assert best is not None
        _, self.order_, beta = best
        self.intercept_ = float(beta[0])
        self.coef_ = {
            self.features[i]: float(b) for i, b in zip(self._columns(self.order_), beta[1:], strict=True)
        }

    def _predict(self, x: np.ndarray) -> np.ndarray:
        design = _design(x)[:, 1:]
        used = self._columns(self.order_)
        coefficients = np.array([self.coef_[self.features[i]] for i in used])
        return self.intercept_ + design[:, used] @ coefficients

    def feature_importance(self) -> dict[str, float]:
        return {name: abs(c) for name, c in self.coef_.items()}

    def _state(self) -> dict[str, Any]:
        return {
            "order": self.order_,
            "intercept": self.intercept_,
            "coefficients": self.coef_,
            "validation_rmse_by_order": {str(k): v for k, v in self.validation_rmse_by_order_.items()},
        }

    def _restore(self, state: dict[str, Any], directory: Path) -> None:
        self.order_ = int(state["order"])
        self.intercept_ = float(state["intercept"])
        self.coef_ = {k: float(v) for k, v in state["coefficients"].items()}
        self.validation_rmse_by_order_ = {
            int(k): float(v) for k, v in state["validation_rmse_by_order"].items()
        }
