"""Supervision of the live loop (pure: the loop's recorded position, the lake's newest bar and the clock
are passed in).

A live loop records, per series, the start of the newest bar it predicted, logged and published (the app
database's ``live_positions``). It *keeps up* when that bar is at most ``threshold`` bars behind the newest
bar the trading calendar says has closed by now. Bars are counted on the instrument's trading calendar
(:mod:`spxcast.sources.market.calendar`: positions are consecutive across the daily break, weekends and
holidays), so the count is the same at any bar size. While the market is closed a loop has nothing to do:
nothing is judged and no alarm is raised; a loop that fell behind is judged again at the next open.

A loop that has never recorded a position while the market is open is an alarm as well: no loop is
running for the series (a loop just started records its first position at the first bar that closes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from spxcast.monitoring.alerts import Finding
from spxcast.sources.market.calendar import resolve_calendar_name, trading_calendar
from spxcast.timeutil import to_epoch_us

CHECK = "live_lag"
"""The alert rule's check name (``monitoring.rules``); its threshold is in bars."""
DEFAULT_THRESHOLD_BARS = 5.0


@dataclass(frozen=True)
class LoopRecord:
    """What the app database and the lake say about the loop of one series.

    ``position``: start of the newest bar the loop processed (None: never started); ``moved_at``: when
    the position last moved (wall clock); ``newest_stored``: start of the newest bar in bronze.candles;
    ``stored_after``: bronze bars after the position (all of them when the loop never started).
    """

    instrument: str
    granularity: str
    position: datetime | None
    moved_at: datetime | None
    newest_stored: datetime | None
    stored_after: int


@dataclass(frozen=True)
class Verdict:
    """The supervision of one series at ``at``: ``lag_bars`` is inf when the loop never started, None when
    the market is closed (not judged); ``alarm`` when the market is open and the loop lags or never ran."""

    record: LoopRecord
    at: datetime
    market_open: bool
    lag_bars: float | None
    threshold: float
    alarm: bool
    message: str

    @property
    def subject(self) -> str:
        return f"{self.record.instrument}:{self.record.granularity}"

    @property
    def status(self) -> str:
        """``market_closed``, ``never_started``, ``lagging`` or ``keeping_up``."""
        if not self.market_open:
            return "market_closed"
        if self.record.position is None:
            return "never_started"
        return "lagging" if self.alarm else "keeping_up"

    def finding(self) -> Finding | None:
        """The ``live_lag`` finding for the alert rules; None while the market is closed (an open alert
        stays as it is until the loop is judged again)."""
        if self.lag_bars is None:
            return None
        return Finding(CHECK, self.subject, self.lag_bars, self.threshold, self.alarm, self.message)


def market_open(at: datetime, instrument: str, calendar: str = "auto") -> bool:
    """Whether ``at`` falls inside a trading session of ``instrument``'s calendar."""
    sessions = trading_calendar(resolve_calendar_name(instrument, calendar), at, at)
    moment = to_epoch_us(at)
    return bool(np.any((sessions.opens <= moment) & (moment < sessions.closes)))


def bars_behind(
    position: datetime, at: datetime, bar: timedelta, instrument: str, calendar: str = "auto"
) -> int:
    """Calendar bars between the bar starting at ``position`` and the newest bar closed by ``at`` (0 when
    the position is that bar or later)."""
    name = resolve_calendar_name(instrument, calendar)
    newest_closed = at - bar  # a bar starting at or before this instant has closed
    sessions = trading_calendar(name, min(position, newest_closed), at)
    positions = sessions.positions(
        np.array([to_epoch_us(position), to_epoch_us(newest_closed)], dtype=np.int64), bar
    )
    return max(0, int(positions[1] - positions[0]))


def judge(
    record: LoopRecord,
    at: datetime,
    bar: timedelta,
    *,
    calendar: str = "auto",
    threshold: float = DEFAULT_THRESHOLD_BARS,
) -> Verdict:
    """The verdict on one series' loop at ``at`` (see the module docstring)."""
    series = f"{record.instrument} {record.granularity}"
    if not market_open(at, record.instrument, calendar):
        where = "has not started" if record.position is None else f"is at the bar of {_time(record.position)}"
        message = (
            f"market closed for {record.instrument}: no progress expected; the live loop of {series} {where}"
        )
        return Verdict(record, at, False, None, threshold, False, message)
    if record.position is None:
        message = (
            f"no live loop has recorded a position for {series} while the market is open "
            f"(bronze.candles holds {record.stored_after} bars): start one with `spxcast serve --live` "
            "or `spxcast live`"
        )
        return Verdict(record, at, True, math.inf, threshold, True, message)
    lag = bars_behind(record.position, at, bar, record.instrument, calendar)
    alarm = lag > threshold
    moved = "" if record.moved_at is None else f", position last moved {_time(record.moved_at)}"
    message = (
        f"live loop of {series} is {lag} bars behind the trading calendar (limit {threshold:g}): newest "
        f"processed bar {_time(record.position)}{moved}; bronze.candles holds {record.stored_after} "
        "newer bars"
    )
    if alarm:
        message += (
            " - the loop is down or stuck: restart it (it resumes from its position)"
            if record.stored_after
            else " - no newer bar is stored either: the candle source delivers nothing (see the bar_age "
            "alert) or the loop, which stores the bars it reads, is down"
        )
    return Verdict(record, at, True, float(lag), threshold, alarm, message)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
