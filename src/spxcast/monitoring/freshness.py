"""Data quality and freshness (pure functions; the clock is passed in).

Ages are counted in *trading* minutes of the instrument's calendar
(:mod:`spxcast.sources.market.calendar`), so the weekend and the daily break add nothing: a bar that closed
at Friday's close is 0 minutes old all weekend and starts ageing when Sunday's session opens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from spxcast.sources.market.calendar import minutes_since_anchor, trading_minutes_before


def trading_age_minutes(since: datetime | None, now: datetime) -> float:
    """Trading minutes between ``since`` and ``now`` (0 if ``since`` is later; inf if it is None)."""
    if since is None:
        return math.inf
    edges = trading_minutes_before(np.array([minutes_since_anchor(since), minutes_since_anchor(now)]))
    return float(max(edges[1] - edges[0], 0.0))


def bar_age_minutes(last_bar_ts: datetime | None, bar: timedelta, now: datetime) -> float:
    """Trading minutes since the newest stored bar (start ``last_bar_ts``) closed; its close is when the
    next bar could first be stored, so a feed that keeps up shows an age below one bar."""
    return trading_age_minutes(None if last_bar_ts is None else last_bar_ts + bar, now)


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
        {"feature": list(features), "missing_share": [float(s) for s in shares], "rows": [frame.height] * len(features)},
        schema={"feature": pl.String, "missing_share": pl.Float64, "rows": pl.Int64},
    )


def quarantine_rate(accepted: int, quarantined: int) -> float:
    """Quarantined share of the records received (0 when none arrived)."""
    total = accepted + quarantined
    return quarantined / total if total else 0.0
