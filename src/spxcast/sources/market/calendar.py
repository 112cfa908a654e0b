"""The OANDA CFD trading calendar of SPX500_USD, in fixed UTC hours.

The market trades in five sessions a week. Session *k* of a week opens on Sunday 22:00 UTC plus *k* days
and runs 23 hours, to 21:00 UTC the next day; the hour 21:00-22:00 is the daily break and Friday 21:00 to
Sunday 22:00 the weekend. Daylight saving time and exchange holidays are ignored: the hours are the
fixed UTC hours of the contract's specification.

Sessions are numbered by an *ordinal* counted from :data:`CALENDAR_ANCHOR` (the session that opened on
Sunday 1999-12-26 22:00 UTC has ordinal 0). Times are handled as integer minutes since the anchor so that
everything here is vectorised over numpy arrays.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

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
