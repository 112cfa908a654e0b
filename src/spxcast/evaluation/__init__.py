"""Honest evaluation: accuracy metrics, Diebold–Mariano against zero, cost-aware backtest, reports."""

from spxcast.evaluation.backtest import backtest, max_drawdown, sharpe, turnover
from spxcast.evaluation.evaluate import daily_ic, evaluate_forecast, evaluate_predictions
from spxcast.evaluation.metrics import (
    diebold_mariano,
    directional_accuracy,
    ic,
    information_ratio,
    mae,
    r2_oos,
    rank_ic,
    rmse,
)

__all__ = [
    "backtest",
    "daily_ic",
    "diebold_mariano",
    "directional_accuracy",
    "evaluate_forecast",
    "evaluate_predictions",
    "ic",
    "information_ratio",
    "mae",
    "max_drawdown",
    "r2_oos",
    "rank_ic",
    "rmse",
    "sharpe",
    "turnover",
]
