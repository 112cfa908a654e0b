"""Forecast accuracy metrics (pure functions of numpy arrays).

Units: ``y`` and ``pred`` are forward returns in percent. Undefined values (a constant forecast has no
correlation, one day has no IC spread) are ``nan`` and serialise as ``null``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y - pred)))


def r2_oos(y: np.ndarray, pred: np.ndarray) -> float:
    """Out-of-sample R² against the zero forecast: ``1 - SSE / Σ y²`` (positive = beats zero)."""
    denominator = float(np.sum(y**2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / denominator if denominator > 0 else math.nan


def directional_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of rows with a non-zero actual whose sign the forecast got right; a zero forecast counts 1/2."""
    moved = y != 0
    if not moved.any():
        return math.nan
    hits = np.where(pred[moved] == 0, 0.5, (np.sign(pred[moved]) == np.sign(y[moved])).astype(float))
    return float(hits.mean())


def ic(y: np.ndarray, pred: np.ndarray) -> float:
    """Information coefficient: Pearson correlation of forecast and actual (nan if either is constant)."""
    if len(y) < 2 or np.ptp(y) == 0 or np.ptp(pred) == 0:
        return math.nan
    return float(np.corrcoef(pred, y)[0, 1])


def rank_ic(y: np.ndarray, pred: np.ndarray) -> float:
    """Rank IC: Spearman correlation of forecast and actual (nan if either is constant)."""
    if len(y) < 2 or np.ptp(y) == 0 or np.ptp(pred) == 0:
        return math.nan
    return float(stats.spearmanr(pred, y).statistic)


def information_ratio(daily: np.ndarray) -> float:
    """ICIR: mean / standard deviation (ddof=1) of per-period ICs (daily, or weekly/monthly when days
    hold too few rows: see ``evaluate.ic_period``), periods with an undefined IC left out."""
    values = daily[np.isfinite(daily)]
    if len(values) < 2 or np.std(values, ddof=1) == 0:
        return math.nan
    return float(np.mean(values) / np.std(values, ddof=1))


def diebold_mariano(y: np.ndarray, pred: np.ndarray, lag: int) -> tuple[float, float]:
    """Diebold–Mariano test of the forecast against the zero forecast, squared-error loss.

    The loss differential is ``d_t = y_t² - (y_t - pred_t)²`` (positive when the model is better); see
    :func:`hac_mean_test`. Returns ``(statistic, p_value)``; the p-value is one-sided for "model better
    than zero" (standard normal). ``nan`` when the differential is constant.
    """
    return hac_mean_test(y**2 - (y - pred) ** 2, lag)


def hac_mean_test(d: np.ndarray, lag: int) -> tuple[float, float]:
    """One-sided test that the mean of a loss differential ``d`` is positive (the Diebold–Mariano test).

    The variance of the mean is the Newey–West (Bartlett-kernel HAC) estimate with ``lag``
    autocovariances — ``H - 1`` bars for overlapping H-bar horizons. Returns ``(statistic, p_value)``,
    p-value of "mean > 0" under the standard normal; ``nan`` when ``d`` is constant or has < 2 values.
    """
    n = len(d)
    if n < 2:
        return math.nan, math.nan
    variance = hac_variance(d, lag)
    if variance <= 0:
        return math.nan, math.nan
    statistic = float(d.mean() / math.sqrt(variance / n))
    return statistic, float(stats.norm.sf(statistic))


def hac_variance(d: np.ndarray, lag: int) -> float:
    """Newey–West (Bartlett-kernel) long-run variance of ``d`` with ``lag`` autocovariances (``n`` ≥ 1)."""
    n = len(d)
    centred = d - d.mean()
    variance = float(centred @ centred) / n
    for k in range(1, min(lag, n - 1) + 1):
        weight = 1.0 - k / (lag + 1)
        variance += 2.0 * weight * float(centred[k:] @ centred[:-k]) / n
    return variance
