"""Trading calendars: the OANDA CFD session of SPX500_USD in fixed UTC hours, FX 24x5, and exchanges.

The market trades in five sessions a week. Session *k* of a week opens on Sunday 22:00 UTC plus *k* days
and runs 23 hours, to 21:00 UTC the next day; the hour 21:00-22:00 is the daily break and Friday 21:00 to
Sunday 22:00 the weekend. Daylight saving time and exchange holidays are ignored: the hours are the
fixed UTC hours of the contract's specification.

Calendars of other instrument kinds (FX, exchanges with holidays) are at the end of the module.

CFD sessions are numbered by an *ordinal* counted from :data:`CALENDAR_ANCHOR` (the session that opened on
Sunday 1999-12-26 22:00 UTC has ordinal 0). Times are handled as integer minutes since the anchor so that
everything here is vectorised over numpy arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from spxcast.errors import ConfigError

CALENDAR_ANCHOR = datetime(1999, 12, 26, 22, 0, tzinfo=UTC)
WEEK_MINUTES = 7 * 1440
SESSION_MINUTES = 23 * 60
SESSIONS_PER_WEEK = 5
TRADING_MINUTES_PER_WEEK = SESSIONS_PER_WEEK * SESSION_MINUTES

IntArray = npt.NDArray[np.int64]


def minutes_since_anchor(moment: datetime) -> float:
    """Minutes (fractional) from :data:`CALENDAR_ANCHOR` to an aware datetime."""
    return (moment - CALENDAR_ANCHOR).total_seconds() / 60.0


def session_open_minute(ordinal: IntArray) -> IntArray:
    """Minute (since the anchor) at which each session ordinal opens."""
    ordinal = np.asarray(ordinal, dtype=np.int64)
    return (ordinal // SESSIONS_PER_WEEK) * WEEK_MINUTES + (ordinal % SESSIONS_PER_WEEK) * 1440


def locate(minute: npt.ArrayLike) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """Session ordinal and offset (minutes since that session's open) of instants given in minutes.

    The ordinal is the session that opened most recently at or before the instant (so an instant in the
    daily break belongs to the session that just closed, with an offset >= :data:`SESSION_MINUTES`; an
    instant in the weekend belongs to Friday's session).
    """
    minute = np.asarray(minute, dtype=np.float64)
    week = np.floor(minute / WEEK_MINUTES)
    within_week = minute - week * WEEK_MINUTES
    day = np.minimum(np.floor(within_week / 1440), SESSIONS_PER_WEEK - 1)
    ordinal = (week * SESSIONS_PER_WEEK + day).astype(np.int64)
    return ordinal, within_week - day * 1440


def is_trading_minute(minute: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether the instants (minutes since the anchor) fall inside a trading session."""
    _, offset = locate(minute)
    return offset < SESSION_MINUTES


def trading_minutes_before(minute: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Trading minutes elapsed between the anchor and each instant (a non-decreasing step-free ramp)."""
    minute = np.asarray(minute, dtype=np.float64)
    week = np.floor(minute / WEEK_MINUTES)
    within_week = minute - week * WEEK_MINUTES
    elapsed = week * TRADING_MINUTES_PER_WEEK
    for k in range(SESSIONS_PER_WEEK):
        elapsed = elapsed + np.clip(within_week - k * 1440, 0, SESSION_MINUTES)
    return elapsed


def first_session_ending_after(minute: float) -> int:
    """Ordinal of the first session whose close is after the instant ``minute``."""
    ordinal, offset = locate(np.array([minute]))
    return int(ordinal[0]) + (1 if offset[0] >= SESSION_MINUTES else 0)


def first_session_opening_at_or_after(minute: float) -> int:
    """Ordinal of the first session that opens at or after the instant ``minute``."""
    ordinal, offset = locate(np.array([minute]))
    return int(ordinal[0]) + (1 if offset[0] > 0 else 0)


# --- Trading calendars per instrument kind ---------------------------------------------------------------
#
# A calendar lists sessions as (open, close) instants in microseconds since the epoch (UTC), sorted. Bars are
# placed on it by *position*: for daily bars the ordinal of the session the bar belongs to (the first session
# closing after the bar's start, so a bar stamped at the session open or at 00:00 UTC of the trading day both
# map to that day); for intraday bars the ordinal of the bar slot (open + k * bar length, cut at the session
# close) that contains the bar's start. Positions are consecutive on the calendar: the N-th next bar of a bar
# at position p is the bar at p + N, whatever weekends, holidays and daily breaks lie between.

_US_PER_MINUTE = 60_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ANCHOR_US = int((CALENDAR_ANCHOR - _EPOCH).total_seconds()) * 1_000_000
_FX_PAIR = re.compile(r"^[A-Z]{3}_[A-Z]{3}$")
_METALS_AND_INDICES = ("XAU", "XAG", "XPT", "XPD")

#: Calendar names: the OANDA CFD session (fixed UTC hours), FX 24x5 (New York 17:00 to 17:00), or an
#: exchange code of the ``exchange_calendars`` library (XNYS, XLON, ...) with its holidays and early closes.
CFD = "cfd"
FX = "fx"


@dataclass(frozen=True)
class TradingCalendar:
    """Sessions of one calendar over a range: ``opens``/``closes`` in UTC microseconds, sorted."""

    name: str
    opens: IntArray
    closes: IntArray

    def positions(self, ts_us: npt.ArrayLike, bar: timedelta) -> IntArray:
        """Calendar position of each bar start (see the section comment): session or slot ordinals."""
        ts = np.asarray(ts_us, dtype=np.int64)
        if bar >= timedelta(days=1):
            return np.searchsorted(self.closes, ts, side="right").astype(np.int64)
        return (np.searchsorted(self.slots(bar), ts, side="right") - 1).astype(np.int64)

    def slots(self, bar: timedelta) -> IntArray:
        """Start (UTC microseconds) of every intraday bar slot: open + k * bar while before the close."""
        step = int(bar.total_seconds() * 1_000_000)
        counts = -(-(self.closes - self.opens) // step)
        first = np.repeat(self.opens, counts)
        within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        return first + within * step


def resolve_calendar_name(instrument: str, name: str = "auto") -> str:
    """The calendar of ``instrument``: ``name`` unless ``auto``; auto is FX 24x5 for currency pairs
    (``EUR_USD``), else the OANDA CFD session."""
    if name != "auto":
        return name
    if _FX_PAIR.match(instrument) and not instrument.startswith(_METALS_AND_INDICES):
        return FX
    return CFD


def trading_calendar(name: str, start: datetime, end: datetime) -> TradingCalendar:
    """Sessions of calendar ``name`` that close after ``start`` and open before ``end`` (a margin of a
    couple of weeks is added on both sides so that positions near the ends are well defined)."""
    start, end = start - timedelta(days=15), end + timedelta(days=15)
    if name == CFD:
        first = first_session_ending_after(minutes_since_anchor(start))
        last = first_session_opening_at_or_after(minutes_since_anchor(end))
        opens = _ANCHOR_US + session_open_minute(np.arange(first, last + 1)) * _US_PER_MINUTE
        return TradingCalendar(CFD, opens, opens + SESSION_MINUTES * _US_PER_MINUTE)
    if name == FX:
        return _fx_calendar(start, end)
    return _exchange_calendar(name, start, end)


def _fx_calendar(start: datetime, end: datetime) -> TradingCalendar:
    """FX 24x5: a session per weekday, from 17:00 New York the day before to 17:00 New York."""
    new_york = ZoneInfo("America/New_York")
    days = [start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)]
    opens, closes = [], []
    for day in days:
        if day.weekday() >= 5:
            continue
        close = datetime.combine(day, time(17), tzinfo=new_york)
        open_ = datetime.combine(day - timedelta(days=1), time(17), tzinfo=new_york)
        opens.append(_us(open_))
        closes.append(_us(close))
    return TradingCalendar(FX, np.array(opens, dtype=np.int64), np.array(closes, dtype=np.int64))


def _exchange_calendar(name: str, start: datetime, end: datetime) -> TradingCalendar:
    """An exchange's regular sessions (holidays and early closes included) from ``exchange_calendars``.

    Whole calendar years are built (and cached), so that the many short windows of online rows reuse one.
    """
    opens, closes = _exchange_sessions(name, date(start.year, 1, 1), date(end.year, 12, 31))
    return TradingCalendar(name, opens, closes)


@lru_cache(maxsize=32)
def _exchange_sessions(name: str, start: date, end: date) -> tuple[IntArray, IntArray]:
    import exchange_calendars

    try:
        calendar = exchange_calendars.get_calendar(name, start=str(start), end=str(end))
    except exchange_calendars.errors.InvalidCalendarName as exc:
        raise ConfigError(
            f"unknown trading calendar {name!r}; use auto, {CFD}, {FX} or an exchange code such as XNYS"
        ) from exc
    except (ValueError, exchange_calendars.errors.CalendarError) as exc:
        raise ConfigError(f"calendar {name} cannot cover {start} to {end}: {exc}") from exc
    schedule = calendar.schedule
    opens = (schedule["open"].astype("int64") // 1000).to_numpy(dtype=np.int64)
    closes = (schedule["close"].astype("int64") // 1000).to_numpy(dtype=np.int64)
    opens.flags.writeable = closes.flags.writeable = False  # shared by the cache
    return opens, closes


def _us(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds()) * 1_000_000


def bar_positions(ts_us: npt.ArrayLike, instrument: str, bar: timedelta, calendar: str = "auto") -> IntArray:
    """Calendar positions of one series' sorted bar starts (UTC microseconds) on ``instrument``'s calendar."""
    ts = np.asarray(ts_us, dtype=np.int64)
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = (_EPOCH + timedelta(microseconds=int(v)) for v in (ts[0], ts[-1]))
    return trading_calendar(resolve_calendar_name(instrument, calendar), first, last).positions(ts, bar)
