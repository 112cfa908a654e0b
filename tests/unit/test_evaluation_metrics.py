"""Metrics, Diebold–Mariano and the backtest against values computed by hand on small arrays."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spxcast.evaluation import (
    backtest,
    daily_ic,
    diebold_mariano,
    directional_accuracy,
    evaluate_forecast,
    ic,
    information_ratio,
    mae,
    max_drawdown,
    r2_oos,
    rank_ic,
    rmse,
    sharpe,
    turnover,
)
from spxcast.evaluation.backtest import non_overlapping_entries
from spxcast.evaluation.evaluate import ic_period

Y = np.array([1.0, -2.0, 3.0, 0.0])
PRED = np.array([0.5, -1.0, 1.0, 1.0])


def test_accuracy_metrics_by_hand() -> None:
    assert rmse(Y, PRED) == pytest.approx(math.sqrt(6.25 / 4))
    assert mae(Y, PRED) == pytest.approx(4.5 / 4)
    assert r2_oos(Y, PRED) == pytest.approx(1 - 6.25 / 14)
    assert r2_oos(Y, np.zeros(4)) == 0.0
    assert directional_accuracy(Y, PRED) == 1.0
    assert directional_accuracy(Y, np.array([0.0, 1.0, 1.0, 1.0])) == pytest.approx((0.5 + 0 + 1) / 3)


def test_ic_and_rank_ic_by_hand() -> None:
    assert ic(Y, PRED) == pytest.approx(4.75 / math.sqrt(13 * 2.6875))
    # ranks: y -> [3, 1, 4, 2]; pred -> [2, 1, 3.5, 3.5]
    assert rank_ic(Y, PRED) == pytest.approx(3.0 / math.sqrt(5 * 4.5))
    assert math.isnan(ic(Y, np.zeros(4)))
    assert math.isnan(rank_ic(Y, np.full(4, 0.3)))
    assert information_ratio(np.array([0.1, 0.3, np.nan, 0.2])) == pytest.approx(0.2 / 0.1)


def test_diebold_mariano_by_hand_with_newey_west_lag() -> None:
    y, pred = np.array([1.0, 2.0, -1.0, 0.5]), np.array([0.5, 1.0, 0.0, 0.0])
    # d = y^2 - (y - pred)^2 = [0.75, 3, 0, 0], mean 0.9375
    gamma0 = 6.046875 / 4
    gamma1 = -1.44140625 / 4
    statistic, pvalue = diebold_mariano(y, pred, lag=1)
    expected = 0.9375 / math.sqrt((gamma0 + 2 * 0.5 * gamma1) / 4)
    assert statistic == pytest.approx(expected)
    assert pvalue == pytest.approx(stats.norm.sf(expected))
    no_lag, _ = diebold_mariano(y, pred, lag=0)
    assert no_lag == pytest.approx(0.9375 / math.sqrt(gamma0 / 4))
    assert all(math.isnan(v) for v in diebold_mariano(y, np.zeros(4), lag=1))


def test_sharpe_drawdown_turnover_by_hand() -> None:
    assert sharpe(np.array([1.0, -1.0, 2.0, 0.0]), 252) == pytest.approx(
        0.5 / math.sqrt(5 / 3) * math.sqrt(252)
    )
    assert math.isnan(sharpe(np.array([1.0, 1.0]), 252))
    assert max_drawdown(np.array([1.0, -2.0, 0.5, 3.0, -4.0, 1.0])) == pytest.approx(4.0)
    assert max_drawdown(np.array([-1.0, -1.0])) == pytest.approx(2.0)
    # |changes| from flat: 1, 0, 2, 1, 1, then the final close 1 -> 6 units = 3 round trips over 5 entries
    assert turnover(np.array([1.0, 1.0, -1.0, 0.0, 1.0])) == pytest.approx(0.6)


def test_backtest_holds_the_sign_on_non_overlapping_entries_and_charges_costs() -> None:
    minutes = np.array([0.0, 10.0, 30.0, 40.0, 60.0, 95.0])
    y = np.array([0.2, 9.0, 0.1, 9.0, -0.3, 0.4])
    pred = np.array([1.0, 5.0, -1.0, 3.0, -2.0, 0.5])
    result = backtest(minutes, y, pred, horizon_minutes=30, cost_bps=10)
    np.testing.assert_array_equal(result.entry_index, [0, 2, 4, 5])
    np.testing.assert_allclose(result.gross, [0.2, -0.1, 0.3, 0.4])
    np.testing.assert_allclose(result.net, [0.2 - 0.05, -0.1 - 0.1, 0.3, 0.4 - 0.15])
    summary = result.summary()
    assert summary["turnover"] == pytest.approx(6 / 2 / 4)
    assert summary["hit_rate"] == pytest.approx(0.75)
    assert summary["entries_per_year"] == pytest.approx(4 / (125 / (365.25 * 24 * 60)))
    assert summary["max_drawdown_pct"] == pytest.approx(0.2)


def test_daily_ic_and_evaluate_forecast_shape() -> None:
    start = datetime(2024, 3, 4, tzinfo=UTC)
    ts = pl.Series([start + timedelta(hours=6 * i) for i in range(8)], dtype=pl.Datetime("us", "UTC"))
    y = np.array([1.0, 2.0, 3.0, 4.0, 1.0, -1.0, 2.0, 0.0])
    pred = np.array([1.0, 2.0, 3.0, 5.0, -1.0, 1.0, -2.0, 0.0])
    daily = daily_ic(ts, y, pred)
    assert daily["rows"].to_list() == [4, 4]
    assert daily["ic"][0] == pytest.approx(ic(y[:4], pred[:4]))
    assert daily["ic"][1] == pytest.approx(ic(y[4:], pred[4:]))
    result = evaluate_forecast(ts, y, pred, horizon_minutes=30, horizon_bars=30, cost_bps=1.0)
    assert result["rows"] == 8
    assert result["rmse"] == pytest.approx(rmse(y, pred))
    assert result["backtest"]["entries"] == 8
    zero = evaluate_forecast(ts, y, np.zeros(8), 30, 30, 1.0)
    assert zero["ic"] is None
    assert zero["dm_pvalue"] is None
    assert zero["r2_oos"] == 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=60), st.integers(1, 40))
def test_entries_match_a_naive_loop(steps: list[int], horizon: int) -> None:
    minutes = np.cumsum(np.asarray(steps, dtype=float))
    naive, next_allowed = [], -math.inf
    for i, t in enumerate(minutes):
        if t >= next_allowed:
            naive.append(i)
            next_allowed = t + horizon
    np.testing.assert_array_equal(non_overlapping_entries(minutes, horizon), naive)


def test_icir_groups_by_week_or_month_when_days_hold_few_rows() -> None:
    """Regression: with one row per day every daily IC was undefined and ICIR was null for daily bars."""
    rng = np.random.default_rng(3)
    days = pl.datetime_range(
        datetime(2022, 1, 3, tzinfo=UTC), datetime(2023, 12, 29, tzinfo=UTC), "1d", eager=True
    ).filter(pl.Series(np.arange(726) % 7 < 5))
    y = rng.standard_normal(len(days))
    pred = y + 2 * rng.standard_normal(len(days))
    assert ic_period(days) == "month"
    daily = evaluate_forecast(days, y, pred, horizon_minutes=1440, horizon_bars=1, cost_bps=1.0)
    assert daily["icir_period"] == "month"
    monthly = daily_ic(days, y, pred, "month")
    assert monthly.height == 24 and monthly["rows"].min() >= 19
    assert daily["icir"] == pytest.approx(information_ratio(monthly["ic"].to_numpy()))
    assert daily["icir"] > 0
    hours = pl.Series(
        [
            datetime(2024, 1, 1, 14, tzinfo=UTC) + timedelta(days=d, hours=h)
            for d in range(60)
            for h in range(7)
        ]
    )
    assert ic_period(hours) == "week", "7 hourly bars a day (an exchange session)"
    minutes = pl.Series([datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=m) for m in range(3000)])
    assert ic_period(minutes) == "day"
