"""Decay on realised outcomes: alarms after a regime change, with significance, never before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from scipy.signal import lfilter

from spxcast.monitoring import performance

H = 30  # horizon in bars: overlapping 30-bar returns, errors correlated over 29 bars


def overlapping(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sum of the next H one-bar shocks: an MA(H-1) series like overlapping H-bar returns (unit variance)."""
    shocks = rng.normal(size=n + H)
    return lfilter(np.ones(H) / np.sqrt(H), [1.0], shocks)[H:]


def test_regime_change_raises_decay_within_bounded_bars_and_none_before() -> None:
    rng = np.random.default_rng(21)
    n, switch = 12_000, 6_000
    signal = overlapping(rng, n)  # what the model predicts
    noise = overlapping(rng, n)
    realised = signal + noise  # planted signal on ...
    realised[switch:] = noise[switch:]  # ... and switched off: the model keeps predicting it
    prediction = signal
    reference_rmse = float(np.sqrt(np.mean((realised[:switch] - prediction[:switch]) ** 2)))
    window, every = 2_000, 60
    first_alarm = None
    for end in range(window, n + 1, every):
        verdict = performance.decay_test(
            realised[end - window : end],
            prediction[end - window : end],
            reference_rmse,
            margin=0.2,
            p_value=0.01,
            lag=H - 1,
            min_rows=200,
        )
        if verdict.decayed:
            assert end > switch, f"decay alarm at bar {end}, before the switch at {switch}"
            assert verdict.p_value < 0.01 and verdict.ratio > 1.2
            first_alarm = first_alarm or end
    assert first_alarm is not None
    delay = first_alarm - switch
    print(f"decay alarm {delay} bars after the switch (window {window})")
    assert delay <= window


def test_noise_just_above_the_margin_is_not_called_decay() -> None:
    rng = np.random.default_rng(5)
    y = overlapping(rng, 400)
    pred = np.zeros(400)
    rmse = float(np.sqrt(np.mean(y**2)))
    verdict = performance.decay_test(y, pred, rmse / 1.21, margin=0.2, p_value=0.01, lag=H - 1, min_rows=200)
    assert verdict.ratio > 1.2 and not verdict.decayed  # above the margin, not significantly


def test_too_few_rows_give_no_verdict() -> None:
    verdict = performance.decay_test(
        np.ones(50), np.zeros(50), 0.1, margin=0.2, p_value=0.01, lag=0, min_rows=200
    )
    assert not verdict.decayed and np.isnan(verdict.p_value)


def test_skill_intervals_cover_the_point_estimates() -> None:
    rng = np.random.default_rng(2)
    signal = overlapping(rng, 3000)
    y = 0.3 * signal + overlapping(rng, 3000)
    s = performance.skill(y, 0.3 * signal, lag=H - 1)
    for name in ("rmse", "r2_oos", "ic", "hit_rate"):
        assert s[f"{name}_lo"] <= s[name] <= s[f"{name}_hi"], name
    assert s["r2_oos"] > 0 and s["ic"] > 0


def test_skill_by_day_and_week() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    rng = np.random.default_rng(1)
    n = 3 * 1380
    frame = pl.DataFrame(
        {
            "bar_ts": [start + timedelta(minutes=i) for i in range(n)],
            "predicted_pct": rng.normal(size=n),
            "realised_pct": rng.normal(size=n),
        }
    )
    daily = performance.skill_by_period(frame, "1d", lag=H - 1)
    weekly = performance.skill_by_period(frame, "1w", lag=H - 1)
    assert daily.height == 3 and weekly.height == 1
    assert daily["rows"].sum() == n


def test_paired_rows_and_test_prefer_the_better_challenger() -> None:
    rng = np.random.default_rng(8)
    n = 3000
    start = datetime(2026, 3, 2, tzinfo=UTC)
    signal = overlapping(rng, n)
    y = signal + overlapping(rng, n)
    bars = [start + timedelta(minutes=i) for i in range(n)]
    log = pl.concat(
        [
            pl.DataFrame({"bar_ts": bars, "role": "served", "predicted_pct": np.zeros(n), "realised_pct": y}),
            pl.DataFrame({"bar_ts": bars, "role": "shadow", "predicted_pct": signal, "realised_pct": y}),
        ]
    )
    rows = performance.paired_rows(log)
    assert rows.height == n
    result = performance.paired_test(
        rows["realised_pct"].to_numpy(),
        rows["champion_pct"].to_numpy(),
        rows["challenger_pct"].to_numpy(),
        H - 1,
    )
    assert result.p_value < 0.01 and result.challenger_rmse < result.champion_rmse
    reverse = performance.paired_test(
        rows["realised_pct"].to_numpy(),
        rows["challenger_pct"].to_numpy(),
        rows["champion_pct"].to_numpy(),
        H - 1,
    )
    assert reverse.p_value > 0.5
