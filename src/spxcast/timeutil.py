"""Granularities and UTC time helpers.

Every timestamp in spxcast is timezone-aware UTC. A bar's ``ts`` is its start; the bar is known at its
close, ``ts + bar_length``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from spxcast.errors import ConfigError

_GRANULARITY = re.compile(r"^(?:(?P<unit>[SMH])(?P<n>\d+)|(?P<fixed>D|W))$")
_UNIT_SECONDS = {"S": 1, "M": 60, "H": 3600}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC (the lake's and the calendars' integer time); naive is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_epoch_us(value: int) -> datetime:
    """The aware UTC datetime ``value`` microseconds after 1970-01-01 UTC (inverse of :func:`to_epoch_us`)."""
    return EPOCH + timedelta(microseconds=int(value))


#: The bar sizes spxcast builds features, labels and calendars for.
SUPPORTED_GRANULARITIES: tuple[str, ...] = ("M1", "M5", "M15", "M30", "H1", "H4", "D")


def bar_length(granularity: str) -> timedelta:
    """Length of one bar of an OANDA granularity (S5, M1, M5, M15, H1, H4, D, W)."""
    match = _GRANULARITY.match(granularity)
    if match is None:
        raise ConfigError(
            f"granularity {granularity!r} is not recognised; use OANDA codes such as M1, M5, M15, H1, H4 or D"
        )
    if match["fixed"] == "D":
        return timedelta(days=1)
    if match["fixed"] == "W":
        return timedelta(weeks=1)
    n = int(match["n"])
    if n <= 0:
        raise ConfigError(f"granularity {granularity!r} must have a positive length")
    return timedelta(seconds=n * _UNIT_SECONDS[match["unit"]])


def check_granularity(granularity: str) -> str:
    """``granularity`` when it is one of :data:`SUPPORTED_GRANULARITIES`; else a ConfigError naming them."""
    if granularity not in SUPPORTED_GRANULARITIES:
        raise ConfigError(
            f"granularity {granularity!r} is not supported; use one of {', '.join(SUPPORTED_GRANULARITIES)}"
        )
    return granularity


def bar_minutes(granularity: str) -> float:
    """Bar length in minutes (may be fractional for second bars)."""
    return bar_length(granularity).total_seconds() / 60.0


def horizon_bars(horizon_minutes: int, granularity: str) -> int:
    """Number of bars in a horizon; the horizon must be a whole number of bars."""
    bars = horizon_minutes / bar_minutes(granularity)
    if bars < 1 or abs(bars - round(bars)) > 1e-9:
        raise ConfigError(
            f"horizon of {horizon_minutes} min is not a whole number of {granularity} bars; "
            "choose a horizon that is a multiple of the bar length"
        )
    return round(bars)


def parse_utc(value: str | datetime | date) -> datetime:
    """Parse an ISO-8601 date or datetime into an aware UTC datetime; naive input is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(
                f"cannot read {value!r} as a date or time; "
                "use ISO-8601 such as 2024-01-31 or 2024-01-31T14:30Z"
            ) from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
