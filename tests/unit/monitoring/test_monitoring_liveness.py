"""Live-loop supervision: keeping up, lagging, market closed and never started, counted in calendar bars."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from spxcast.monitoring import liveness

M1 = timedelta(minutes=1)
# The SPX500_USD CFD session: Sunday 22:00 to Friday 21:00 UTC with a daily break 21:00-22:00.
WEDNESDAY = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
FRIDAY_LAST_BAR = datetime(2026, 3, 6, 20, 59, tzinfo=UTC)


def record(position: datetime | None, stored_after: int = 0) -> liveness.LoopRecord:
    moved = None if position is None else position + 2 * M1
    return liveness.LoopRecord("SPX500_USD", "M1", position, moved, position, stored_after)


def test_a_loop_one_bar_behind_keeps_up_and_clears_its_alert() -> None:
    # At 14:00 the newest closed bar is the 13:59 bar; the loop has the 13:58 one.
    verdict = liveness.judge(record(WEDNESDAY - 2 * M1), WEDNESDAY, M1)
    assert verdict.market_open and verdict.lag_bars == 1.0
    assert not verdict.alarm and verdict.status == "keeping_up"
    finding = verdict.finding()
    assert finding is not None and finding.key == "live_lag:SPX500_USD:M1" and not finding.breached


def test_a_loop_behind_the_stored_bars_is_lagging_and_told_to_restart() -> None:
    verdict = liveness.judge(record(WEDNESDAY - 21 * M1, stored_after=20), WEDNESDAY, M1, threshold=5)
    assert verdict.alarm and verdict.status == "lagging" and verdict.lag_bars == 20.0
    assert "20 bars behind the trading calendar (limit 5)" in verdict.message
    assert "bronze.candles holds 20 newer bars" in verdict.message
    assert "down or stuck: restart it" in verdict.message
    finding = verdict.finding()
    assert finding is not None and finding.breached and finding.value == 20.0 and finding.threshold == 5


def test_a_lag_with_no_newer_stored_bar_points_at_the_source() -> None:
    verdict = liveness.judge(record(WEDNESDAY - 30 * M1), WEDNESDAY, M1)
    assert verdict.alarm and "the candle source delivers nothing" in verdict.message


def test_the_threshold_is_a_bar_count_not_wall_minutes() -> None:
    at_limit = liveness.judge(record(WEDNESDAY - 6 * M1), WEDNESDAY, M1, threshold=5)
    assert at_limit.lag_bars == 5.0 and not at_limit.alarm
    m15 = liveness.judge(
        liveness.LoopRecord("SPX500_USD", "M15", WEDNESDAY - 60 * M1, None, None, 0),
        WEDNESDAY,
        15 * M1,
        threshold=2,
    )
    assert m15.lag_bars == 3.0 and m15.alarm  # 13:00 processed; 13:15, 13:30 and 13:45 have closed


def test_no_alarm_while_the_market_is_closed_even_far_behind() -> None:
    verdict = liveness.judge(record(datetime(2026, 3, 6, 15, 0, tzinfo=UTC), stored_after=300), SATURDAY, M1)
    assert not verdict.market_open and not verdict.alarm and verdict.lag_bars is None
    assert verdict.status == "market_closed" and verdict.finding() is None
    assert "market closed for SPX500_USD" in verdict.message
    daily_break = datetime(2026, 3, 4, 21, 30, tzinfo=UTC)
    assert liveness.judge(record(daily_break - 40 * M1), daily_break, M1).status == "market_closed"


def test_the_weekend_adds_no_lag() -> None:
    # Sunday 22:03: the Friday 20:59 bar was the last one; the 22:00, 22:01 and 22:02 bars have closed since.
    sunday_open = datetime(2026, 3, 8, 22, 3, tzinfo=UTC)
    verdict = liveness.judge(record(FRIDAY_LAST_BAR), sunday_open, M1)
    assert verdict.market_open and verdict.lag_bars == 3.0 and not verdict.alarm


def test_a_loop_that_never_started_is_an_alarm_only_while_the_market_is_open() -> None:
    verdict = liveness.judge(record(None, stored_after=1000), WEDNESDAY, M1)
    assert verdict.alarm and verdict.status == "never_started" and verdict.lag_bars == math.inf
    assert "no live loop has recorded a position for SPX500_USD M1" in verdict.message
    assert "spxcast serve --live" in verdict.message
    closed = liveness.judge(record(None), SATURDAY, M1)
    assert not closed.alarm and closed.status == "market_closed" and "has not started" in closed.message


def test_daily_bars_count_exchange_sessions() -> None:
    # XNYS trades 14:30-21:00 UTC in March 2026 after the DST switch on the 8th; before it 14:30 is 9:30 EST.
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    wednesday_open = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    rec = liveness.LoopRecord("SPX", "D", monday, None, monday, 0)
    verdict = liveness.judge(rec, wednesday_open, timedelta(days=1), calendar="XNYS", threshold=1)
    assert verdict.lag_bars == 1.0 and not verdict.alarm  # Tuesday's bar is the only one missing
    friday = liveness.judge(rec, datetime(2026, 3, 6, 15, 0, tzinfo=UTC), timedelta(days=1), calendar="XNYS")
    assert friday.lag_bars == 3.0
    assert not liveness.market_open(datetime(2026, 3, 7, 15, 0, tzinfo=UTC), "SPX", "XNYS")
