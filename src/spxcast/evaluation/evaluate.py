"""Every metric for every model on every evaluation split, from one predictions frame.

The predictions frame has one row per (split, bar): ``split``, ``ts`` (bar start, UTC), ``actual`` (the
forward return over the horizon, percent) and one Float64 column per model with its forecast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from spxcast.evaluation import metrics
from spxcast.evaluation.backtest import backtest

ACTUAL = "actual"

#: ICIR periods, finest first; the first whose periods hold at least IC_MIN_ROWS rows on average is used.
IC_PERIODS = {"day": "1d", "week": "1w", "month": "1mo"}
IC_MIN_ROWS = 10


def ic_period(ts: pl.Series) -> str:
    """The finest period (day, week, month) whose periods hold >= :data:`IC_MIN_ROWS` rows on average:
    a day for intraday bars, a week for hourly bars of short sessions, a month for daily bars."""
    for period, every in IC_PERIODS.items():
        groups = ts.dt.truncate(every).n_unique() if len(ts) else 0
        if groups and len(ts) / groups >= IC_MIN_ROWS:
            return period
    return "month"


def daily_ic(ts: pl.Series, y: np.ndarray, pred: np.ndarray, period: str = "day") -> pl.DataFrame:
    """Pearson IC per UTC calendar ``period`` (day, week from Monday, month): columns ``day`` (the
    period's first day), ``rows``, ``ic`` (null when undefined)."""
    frame = pl.DataFrame({"day": ts.dt.truncate(IC_PERIODS[period]).dt.date(), "y": y, "pred": pred})
    rows = [
        {"day": day, "rows": len(group), "ic": metrics.ic(group["y"].to_numpy(), group["pred"].to_numpy())}
        for (day,), group in frame.group_by("day", maintain_order=True)
    ]
    schema = {"day": pl.Date, "rows": pl.Int64, "ic": pl.Float64}
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col("ic").fill_nan(None)).sort("day")


def evaluate_forecast(
    ts: pl.Series, y: np.ndarray, pred: np.ndarray, horizon_minutes: int, horizon_bars: int, cost_bps: float
) -> dict[str, Any]:
    """Accuracy, correlation, Diebold–Mariano vs zero and the cost-aware backtest of one forecast."""
    if len(y) == 0:
        return {"rows": 0}
    period = ic_period(ts)
    daily = daily_ic(ts, y, pred, period)["ic"].to_numpy()
    dm_statistic, dm_pvalue = metrics.diebold_mariano(y, pred, lag=max(0, horizon_bars - 1))
    minutes = ts.cast(pl.Datetime("us", "UTC")).dt.epoch("us").to_numpy() / 60e6
    result = {
        "rows": len(y),
        "rmse": metrics.rmse(y, pred),
        "mae": metrics.mae(y, pred),
        "r2_oos": metrics.r2_oos(y, pred),
        "directional_accuracy": metrics.directional_accuracy(y, pred),
        "ic": metrics.ic(y, pred),
        "rank_ic": metrics.rank_ic(y, pred),
        "icir": metrics.information_ratio(daily),
        "icir_period": period,
        "dm_statistic": dm_statistic,
        "dm_pvalue": dm_pvalue,
        "backtest": backtest(minutes, y, pred, horizon_minutes, cost_bps).summary(),
    }
    return clean(result)


def evaluate_predictions(
    predictions: pl.DataFrame,
    models: Sequence[str],
    horizon_minutes: int,
    horizon_bars: int,
    cost_bps: float,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{model: {split: metrics}}`` for every model column and split of ``predictions``."""
    splits = list(dict.fromkeys(predictions["split"].to_list()))
    result: dict[str, dict[str, dict[str, Any]]] = {model: {} for model in models}
    for split in splits:
        part = predictions.filter(pl.col("split") == split).sort("ts")
        y = part[ACTUAL].to_numpy()
        for model in models:
            result[model][split] = evaluate_forecast(
                part["ts"], y, part[model].to_numpy(), horizon_minutes, horizon_bars, cost_bps
            )
    return result


def clean(value: Any) -> Any:
    """JSON-safe copy: nan/inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
