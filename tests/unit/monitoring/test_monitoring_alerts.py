"""Alert dedup and cooldown; retrain policy and promotion decisions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from spxcast.config import AlertRule
from spxcast.errors import ConfigError
from spxcast.monitoring import alerts, retrain
from spxcast.monitoring.performance import Paired

NOW = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
RULES = [AlertRule(check="bar_age", threshold=10, severity="critical", cooldown_minutes=60)]


def stale(breached: bool = True) -> alerts.Finding:
    return alerts.Finding("bar_age", "bars", 30.0, 10.0, breached, "bars 30 trading minutes old")


def test_new_condition_opens_one_alert_with_the_rule_severity() -> None:
    step = alerts.plan([stale()], [], RULES, NOW)
    assert [(a.finding.key, a.severity) for a in step.open] == [("bar_age:bars", "critical")]


def test_open_alert_is_refreshed_not_duplicated() -> None:
    known = [alerts.KnownAlert(1, "bar_age:bars", "open", NOW - timedelta(hours=5))]
    step = alerts.plan([stale()], known, RULES, NOW)
    assert step.open == [] and [i for i, _ in step.refresh] == [1]
    acknowledged = [alerts.KnownAlert(1, "bar_age:bars", "acknowledged", NOW - timedelta(hours=5))]
    assert alerts.plan([stale()], acknowledged, RULES, NOW).open == []


def test_same_condition_within_cooldown_sends_nothing_new() -> None:
    known = [alerts.KnownAlert(1, "bar_age:bars", "resolved", NOW - timedelta(minutes=30))]
    step = alerts.plan([stale()], known, RULES, NOW)
    assert step.open == [] and len(step.suppressed) == 1
    later = alerts.plan([stale()], known, RULES, NOW + timedelta(minutes=31))
    assert len(later.open) == 1


def test_cleared_condition_resolves_and_unruled_checks_stay_silent() -> None:
    known = [alerts.KnownAlert(3, "bar_age:bars", "open", NOW - timedelta(hours=1))]
    assert alerts.plan([stale(breached=False)], known, RULES, NOW).resolve == [3]
    other = alerts.Finding("missing", "f0", 0.5, 0.05, True, "")
    assert alerts.plan([other], [], RULES, NOW).open == []


def opened(check: str) -> alerts.NewAlert:
    return alerts.NewAlert(alerts.Finding(check, "model", 1.0, 0.5, True, ""), "critical")


def test_retrain_policy() -> None:
    assert retrain.retrain_action("off", [opened("decay")])[0] == "none"
    assert retrain.retrain_action("suggest", [opened("decay")]) == ("suggest", ["decay:model"])
    assert retrain.retrain_action("automatic", [opened("drift_share")])[0] == "train"
    assert retrain.retrain_action("automatic", [opened("drift"), opened("bar_age")])[0] == "none"


LIMITS = retrain.PromotionLimits(min_rows=500, p_value=0.05, max_p99_latency_ms=250, max_error_rate=0.01)


def decide(paired: Paired, latency: float = 50.0, errors: float = 0.0, **kw: object) -> retrain.Promotion:
    return retrain.promotion_decision(
        paired,
        challenger_p99_latency_ms=latency,
        challenger_error_rate=errors,
        limits=LIMITS,
        **kw,  # type: ignore[arg-type]
    )


def test_promotion_needs_significance_sample_and_health() -> None:
    good = Paired(rows=800, champion_rmse=0.2, challenger_rmse=0.18, statistic=3.0, p_value=0.001)
    assert decide(good).promote
    assert not decide(Paired(400, 0.2, 0.18, 3.0, 0.001)).promote  # too few rows
    assert not decide(Paired(800, 0.2, 0.19, 1.0, 0.16)).promote  # not significant
    assert not decide(Paired(800, 0.2, 0.2, math.nan, math.nan)).promote
    slow = decide(good, latency=400.0)
    assert not slow.promote and "latency" in slow.reasons[0]
    assert not decide(good, errors=0.05).promote


def test_forced_promotion_needs_a_reason_and_says_so() -> None:
    weak = Paired(rows=10, champion_rmse=0.2, challenger_rmse=0.25, statistic=-1.0, p_value=0.9)
    forced = decide(weak, force=True, reason="vendor outage, old model broken")
    assert forced.promote and forced.forced and forced.reasons[0].startswith("forced: vendor")
    with pytest.raises(ConfigError, match="--reason"):
        decide(weak, force=True, reason=" ")
