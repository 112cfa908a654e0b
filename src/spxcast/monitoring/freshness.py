"""Data quality and freshness (pure functions; the clock is passed in).

Ages are counted in *trading* minutes of the instrument's calendar
(:func:`spxcast.sources.market.calendar.trading_calendar`: the CFD session, FX 24x5 or an exchange with its
holidays), so weekends, holidays and the daily break add nothing: a bar that closed at Friday's close is
0 minutes old all weekend and starts ageing when the next session opens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from spxcast.sources.market.calendar import resolve_calendar_name, trading_calendar
from spxcast.timeutil import to_epoch_us


def trading_age_minutes(
    since: datetime | None, now: datetime, instrument: str, calendar: str = "auto"
) -> float:
    """Trading minutes of ``instrument``'s calendar between ``since`` and ``now`` (0 if ``since`` is later;
    inf if it is None)."""
    if since is None:
        return math.inf
    if since >= now:
        return 0.0
    sessions = trading_calendar(resolve_calendar_name(instrument, calendar), since, now)
    start, end = to_epoch_us(since), to_epoch_us(now)
    overlap = np.minimum(sessions.closes, end) - np.maximum(sessions.opens, start)
    return float(np.clip(overlap, 0, None).sum() / 60e6)


def bar_age_minutes(
    last_bar_ts: datetime | None, bar: timedelta, now: datetime, instrument: str, calendar: str = "auto"
) -> float:
    """Trading minutes since the newest stored bar (start ``last_bar_ts``) closed; its close is when the
    next bar could first be stored, so a feed that keeps up shows an age below one bar."""
    return trading_age_minutes(None if last_bar_ts is None else last_bar_ts + bar, now, instrument, calendar)


def missing_share(frame: pl.DataFrame, features: Sequence[str]) -> pl.DataFrame:
    """Share of rows per feature that are null or NaN: columns ``feature``, ``missing_share``, ``rows``."""
    if frame.is_empty():
        return pl.DataFrame(
            {"feature": list(features), "missing_share": [0.0] * len(features), "rows": [0] * len(features)},
            schema={"feature": pl.String, "missing_share": pl.Float64, "rows": pl.Int64},
        )
    shares = frame.select(
        [(pl.col(f).cast(pl.Float64).fill_nan(None).is_null().mean()).alias(f) for f in features]
    ).row(0)
    return pl.DataFrame(
        {
            "feature": list(features),
            "missing_share": [float(s) for s in shares],
            "rows": [frame.height] * len(features),
        },
        schema={"feature": pl.String, "missing_share": pl.Float64, "rows": pl.Int64},
    )


def quarantine_rate(accepted: int, quarantined: int) -> float:
    """Quarantined share of the records received (0 when none arrived)."""
    total = accepted + quarantined
    return quarantined / total if total else 0.0
