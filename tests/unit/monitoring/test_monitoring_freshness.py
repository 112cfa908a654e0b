"""Freshness on the trading calendar: quiet over the weekend, loud when bars stop in a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from spxcast.monitoring import freshness

M1 = timedelta(minutes=1)
SPX = "SPX500_USD"
FRIDAY_LAST_BAR = datetime(2026, 3, 6, 20, 59, tzinfo=UTC)  # the last M1 bar before Friday's 21:00 close


def test_no_age_over_the_weekend() -> None:
    for hours in (1, 12, 24, 48):  # Friday evening ... Sunday 21:00, before the 22:00 open
        now = datetime(2026, 3, 6, 21, 0, tzinfo=UTC) + timedelta(hours=hours)
        assert freshness.bar_age_minutes(FRIDAY_LAST_BAR, M1, now, SPX) == 0.0
    sunday_open = datetime(2026, 3, 8, 22, 0, tzinfo=UTC)
    assert freshness.bar_age_minutes(FRIDAY_LAST_BAR, M1, sunday_open + timedelta(minutes=15), SPX) == 15.0


def test_bars_stopping_during_the_session_age() -> None:
    last = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wednesday
    assert freshness.bar_age_minutes(last, M1, last + timedelta(minutes=1, seconds=30), SPX) == 0.5
    assert freshness.bar_age_minutes(last, M1, last + timedelta(minutes=31), SPX) == 30.0
    assert freshness.bar_age_minutes(None, M1, last, SPX) == float("inf")


def test_daily_break_does_not_count() -> None:
    last = datetime(2026, 3, 4, 20, 59, tzinfo=UTC)  # last bar of Wednesday's session
    assert freshness.bar_age_minutes(last, M1, datetime(2026, 3, 4, 21, 59, tzinfo=UTC), SPX) == 0.0
    assert freshness.bar_age_minutes(last, M1, datetime(2026, 3, 4, 22, 10, tzinfo=UTC), SPX) == 10.0


def test_missing_share_counts_null_and_nan() -> None:
    frame = pl.DataFrame({"a": [1.0, None, float("nan"), 4.0], "b": [1.0, 2.0, 3.0, 4.0]})
    shares = freshness.missing_share(frame, ["a", "b"])
    assert shares["missing_share"].to_list() == [0.5, 0.0]


def test_quarantine_rate() -> None:
    assert freshness.quarantine_rate(99, 1) == 0.01
    assert freshness.quarantine_rate(0, 0) == 0.0


def test_fx_calendar_is_quiet_on_saturday_and_exchange_on_a_holiday() -> None:
    friday_close = datetime(2026, 3, 6, 22, 0, tzinfo=UTC)  # 17:00 New York (EST)
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    assert freshness.trading_age_minutes(friday_close, saturday, "EUR_USD") == 0.0
    good_friday = datetime(2026, 4, 3, 15, 0, tzinfo=UTC)  # NYSE closed
    thursday_close = datetime(2026, 4, 2, 20, 0, tzinfo=UTC)
    assert freshness.trading_age_minutes(thursday_close, good_friday, "SPY", "XNYS") == 0.0
