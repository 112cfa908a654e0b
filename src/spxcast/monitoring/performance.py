"""Skill on realised outcomes (pure functions of frames).

Input: one row per served prediction whose horizon has passed — ``bar_ts`` (bar start, UTC), ``predicted_pct``
and ``realised_pct`` (the H-bar forward return in percent, known H bars after ``bar_ts``'s close). Overlapping
horizons make consecutive errors correlated over ``H - 1`` bars, so every standard error here is the
Newey–West estimate with ``lag = H - 1`` (the Diebold–Mariano machinery of :mod:`spxcast.evaluation.metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from spxcast.evaluation.metrics import (
    directional_accuracy,
    hac_mean_test,
    hac_variance,
    ic,
    r2_oos,
    rmse,
)

_Z95 = 1.959963984540054


def _hac_se(d: np.ndarray, lag: int) -> float:
    """Standard error of the mean of ``d`` (Newey–West, ``lag`` autocovariances)."""
    return math.sqrt(max(hac_variance(d, lag), 0.0) / len(d)) if len(d) >= 2 else math.nan


def skill(y: np.ndarray, pred: np.ndarray, lag: int) -> dict[str, float]:
    """RMSE, R²_OOS against the zero forecast, IC and hit rate of one set of rows, with 95 % intervals.

    Intervals: RMSE from the HAC interval of the mean squared error; R²_OOS from the HAC interval of the
    Diebold–Mariano differential ``y² - e²`` over ``mean(y²)``; IC by Fisher's z with ``n / (lag + 1)``
    effective rows; hit rate by Wilson's interval with the same effective rows.
    """
    n = len(y)
    out: dict[str, float] = {"rows": float(n)}
    if n < 2:
        return out | {k: math.nan for k in ("rmse", "r2_oos", "ic", "hit_rate")}
    errors2 = (y - pred) ** 2
    mse, se = float(errors2.mean()), _hac_se(errors2, lag)
    out["rmse"] = rmse(y, pred)
    out["rmse_lo"] = math.sqrt(max(mse - _Z95 * se, 0.0))
    out["rmse_hi"] = math.sqrt(mse + _Z95 * se)
    out["r2_oos"] = r2_oos(y, pred)
    y2 = float(np.mean(y**2))
    d_se = _hac_se(y**2 - errors2, lag)
    out["r2_oos_lo"] = out["r2_oos"] - _Z95 * d_se / y2 if y2 > 0 else math.nan
    out["r2_oos_hi"] = out["r2_oos"] + _Z95 * d_se / y2 if y2 > 0 else math.nan
    n_eff = max(n / (lag + 1), 2.0)
    corr = ic(y, pred)
    out["ic"] = corr
    if math.isfinite(corr) and n_eff > 3 and abs(corr) < 1:
        z, half = math.atanh(corr), _Z95 / math.sqrt(n_eff - 3)
        out["ic_lo"], out["ic_hi"] = math.tanh(z - half), math.tanh(z + half)
    hit = directional_accuracy(y, pred)
    out["hit_rate"] = hit
    if math.isfinite(hit):
        centre = (hit + _Z95**2 / (2 * n_eff)) / (1 + _Z95**2 / n_eff)
        half = _Z95 * math.sqrt(hit * (1 - hit) / n_eff + _Z95**2 / (4 * n_eff**2)) / (1 + _Z95**2 / n_eff)
        out["hit_rate_lo"], out["hit_rate_hi"] = centre - half, centre + half
    return out


def skill_by_period(realised: pl.DataFrame, every: str, lag: int) -> pl.DataFrame:
    """:func:`skill` per calendar period of ``bar_ts`` (``every``: a polars duration, "1d" or "1w")."""
    rows = []
    frame = realised.sort("bar_ts").with_columns(pl.col("bar_ts").dt.truncate(every).alias("period"))
    for (period,), part in frame.group_by(["period"], maintain_order=True):
        y = part["realised_pct"].to_numpy().astype(np.float64)
        pred = part["predicted_pct"].to_numpy().astype(np.float64)
        rows.append({"period": period, **skill(y, pred, lag)})
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"period": pl.Datetime("us", "UTC")})


@dataclass(frozen=True)
class Decay:
    """Verdict of the decay test on a window of realised rows."""

    rows: int
    realised_rmse: float
    reference_rmse: float
    ratio: float
    margin: float
    statistic: float
    p_value: float
    decayed: bool


def decay_test(
    y: np.ndarray,
    pred: np.ndarray,
    reference_rmse: float,
    *,
    margin: float,
    p_value: float,
    lag: int,
    min_rows: int,
) -> Decay:
    """Whether the realised RMSE exceeds ``(1 + margin) · reference_rmse`` significantly.

    A Diebold–Mariano-type test on ``d_t = e_t² - ((1 + margin) · reference_rmse)²``: decay is called when the
    mean of ``d`` is positive with one-sided p-value below ``p_value`` (HAC variance, ``lag`` = H - 1). The
    null is "the loss is at most the tolerated one", so noise around a RMSE just above the margin does not
    alarm; fewer than ``min_rows`` rows give no verdict.
    """
    n = len(y)
    realised = rmse(y, pred) if n else math.nan
    ratio = realised / reference_rmse if reference_rmse > 0 else math.nan
    if n < min_rows or not reference_rmse > 0:
        return Decay(n, realised, reference_rmse, ratio, margin, math.nan, math.nan, False)
    tolerated = ((1.0 + margin) * reference_rmse) ** 2
    statistic, p = hac_mean_test((y - pred) ** 2 - tolerated, lag)
    decayed = math.isfinite(p) and p < p_value and ratio > 1.0 + margin
    return Decay(n, realised, reference_rmse, ratio, margin, statistic, p, decayed)


@dataclass(frozen=True)
class Paired:
    """Challenger against champion on the same realised rows (squared-error loss)."""

    rows: int
    champion_rmse: float
    challenger_rmse: float
    statistic: float
    p_value: float


def paired_test(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, lag: int) -> Paired:
    """Diebold–Mariano test that the challenger's squared error is lower than the champion's on the same rows.

    ``d_t = (y_t - champion_t)² - (y_t - challenger_t)²``; one-sided p-value of "challenger better".
    """
    if len(y) < 2:
        return Paired(len(y), math.nan, math.nan, math.nan, math.nan)
    statistic, p = hac_mean_test((y - champion) ** 2 - (y - challenger) ** 2, lag)
    return Paired(len(y), rmse(y, champion), rmse(y, challenger), statistic, p)


def paired_rows(log: pl.DataFrame) -> pl.DataFrame:
    """Served and shadow predictions of the same bars side by side: ``bar_ts``, ``realised_pct``,
    ``champion_pct``, ``challenger_pct`` (bars both roles scored and whose outcome is known)."""
    realised = log.filter(pl.col("realised_pct").is_not_null() & pl.col("bar_ts").is_not_null())
    served = (
        realised.filter(pl.col("role") == "served")
        .group_by("bar_ts")
        .agg(pl.col("predicted_pct").last().alias("champion_pct"), pl.col("realised_pct").last())
    )
    shadow = (
        realised.filter(pl.col("role") == "shadow")
        .group_by("bar_ts")
        .agg(pl.col("predicted_pct").last().alias("challenger_pct"))
    )
    return served.join(shadow, on="bar_ts", how="inner").sort("bar_ts")
