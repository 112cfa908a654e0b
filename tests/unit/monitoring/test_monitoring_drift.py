"""Calibrated drift: planted shifts are found, stationary autocorrelated data rarely alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from scipy.signal import lfilter

from spxcast.config import AlertRule
from spxcast.monitoring import alerts, drift

SESSION = 1380  # M1 bars in one trading session


def ar1(rng: np.random.Generator, n: int, features: int, phi: float) -> np.ndarray:
    """Stationary AR(1) columns with unit variance and lag-1 autocorrelation ``phi``."""
    noise = rng.normal(size=(n + 500, features)) * np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], noise, axis=0)[500:]


def frame(values: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(values, schema=[f"f{i}" for i in range(values.shape[1])])


def test_autocorrelation_time_of_ar1_matches_theory() -> None:
    rng = np.random.default_rng(0)
    tau = drift.autocorrelation_time(ar1(rng, 200_000, 1, 0.9)[:, 0])
    assert 15 < tau < 23  # (1 + 0.9) / (1 - 0.9) = 19
    assert drift.autocorrelation_time(rng.normal(size=50_000)) < 1.2


def test_planted_half_sigma_shift_in_ten_features_is_found_and_only_there() -> None:
    """The issue asks for the ten shifted features within 30 bars at a false-alarm rate of at most one alert
    per feature in 20 trading days (alpha 0.0005 per check, two-sided z = 3.48). Not attainable by any
    detector: 30 bars of a 0.5 sigma mean shift are z = 2.74 for i.i.d. features and 2.24 at lag-1
    autocorrelation 0.2 (effective sample 30 (1 - phi) / (1 + phi)), so even the optimal test finds a given
    feature with probability 0.23 / 0.11 (measured for this detector: 0.17 / 0.08; 0.85 at 120 bars, 1.00 at
    240; docs/monitoring.md). The shift is therefore planted over the default 240-bar window, where it is
    found with certainty, and the other thirty features must stay quiet."""
    rng = np.random.default_rng(7)
    reference = frame(ar1(rng, 10 * SESSION, 40, 0.2))
    window = 240
    thresholds = drift.calibrate(
        reference, reference.columns, window_bars=window, alpha=0.0005, samples=300, seed=1
    )
    current = ar1(rng, window, 40, 0.2)
    current[:, :10] += 0.5  # half a standard deviation
    result = drift.feature_drift(drift.references(reference, reference.columns), frame(current), thresholds)
    drifted = set(result.filter(pl.col("drifted"))["feature"])
    assert drifted == {f"f{i}" for i in range(10)}
    assert drift.drift_share(result) == 0.25


def test_psi_method_finds_a_spread_change() -> None:
    rng = np.random.default_rng(3)
    reference = frame(rng.normal(size=(5 * SESSION, 2)))
    thresholds = drift.calibrate(
        reference, ["f0", "f1"], window_bars=240, alpha=0.001, samples=200, seed=2, method="psi"
    )
    current = rng.normal(size=(240, 2))
    current[:, 0] *= 2.0
    result = drift.feature_drift(drift.references(reference, reference.columns), frame(current), thresholds)
    assert result["drifted"].to_list() == [True, False]
    assert result["method"].to_list() == ["psi", "psi"]


def test_fixed_threshold_from_config_replaces_the_calibrated_one() -> None:
    rng = np.random.default_rng(4)
    reference = frame(rng.normal(size=(2000, 2)))
    thresholds = drift.calibrate(
        reference, ["f0", "f1"], window_bars=100, alpha=0.01, samples=100, seed=0, fixed={"f1": 9.0}
    )
    assert thresholds[1].threshold == 9.0 and not thresholds[1].calibrated
    assert thresholds[0].calibrated and thresholds[0].threshold < 1.0


def test_stationary_ar1_over_twenty_days_raises_at_most_one_alert_per_feature() -> None:
    """phi = 0.9 minute features, hourly checks of the last 240 bars over 20 trading days (440 checks)."""
    rng = np.random.default_rng(11)
    features = 8
    reference = frame(ar1(rng, 20 * SESSION, features, 0.9))
    window = 240
    thresholds = drift.calibrate(
        reference, reference.columns, window_bars=window, alpha=0.0005, samples=300, seed=5
    )
    live = ar1(rng, 20 * SESSION, features, 0.9)
    summaries = drift.references(reference, reference.columns)
    rules = [AlertRule(check="drift", cooldown_minutes=1440)]
    known: list[alerts.KnownAlert] = []
    start = datetime(2026, 1, 5, tzinfo=UTC)
    breaches = checks = 0
    for hour, end in enumerate(range(window, live.shape[0] + 1, 60)):
        now = start + timedelta(hours=hour)
        result = drift.feature_drift(summaries, frame(live[end - window : end]), thresholds)
        findings = [
            alerts.Finding("drift", r["feature"], r["statistic"], r["threshold"], r["drifted"], "")
            for r in result.iter_rows(named=True)
        ]
        breaches += int(result["drifted"].sum())
        checks += result.height
        step = alerts.plan(findings, known, rules, now)
        resolved = set(step.resolve)
        known = [
            alerts.KnownAlert(a.id, a.key, "resolved" if a.id in resolved else a.status, a.raised_at)
            for a in known
        ]
        known += [
            alerts.KnownAlert(len(known) + i, n.finding.key, "open", now) for i, n in enumerate(step.open)
        ]
    per_feature = [sum(a.key == f"drift:f{i}" for a in known) for i in range(features)]
    false_alarm_rate = breaches / checks
    print(
        f"AR(1) phi=0.9: {checks} feature-checks, per-check false-alarm rate {false_alarm_rate:.5f}, "
        f"alerts per feature {per_feature}"
    )
    assert max(per_feature) <= 1
    assert false_alarm_rate < 0.005
