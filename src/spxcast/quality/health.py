"""The data-health report of a candle series: a pure function of the stored bars and quarantine counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from spxcast.sources.market.calendar import (
    CALENDAR_ANCHOR,
    SESSION_MINUTES,
    TRADING_MINUTES_PER_WEEK,
    WEEK_MINUTES,
    trading_minutes_before,
)
from spxcast.timeutil import bar_minutes

#: Unscheduled gaps are bucketed by the number of missing bars (upper bound inclusive).
GAP_BUCKETS: tuple[tuple[str, float], ...] = (
    ("1 bar", 1),
    ("2-5 bars", 5),
    ("6-30 bars", 30),
    ("31-240 bars", 240),
    (">240 bars", float("inf")),
)


@dataclass(frozen=True)
class HealthReport:
    """Health of one (instrument, granularity) series.

    ``gaps`` maps a size bucket to ``{"count", "missing_bars"}`` for holes in trading time; the scheduled
    closures (daily 21:00-22:00 UTC break, weekend) are counted apart in ``scheduled``. ``coverage`` is
    rows divided by the bars the calendar expects between the first and the last bar.
    """

    instrument: str
    granularity: str
    rows: int
    first_ts: datetime | None
    last_ts: datetime | None
    expected_bars: int
    coverage: float
    gaps: dict[str, dict[str, int]] = field(default_factory=dict)
    scheduled: dict[str, int] = field(default_factory=dict)
    duplicate_keys: int = 0
    quarantine: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (timestamps as ISO-8601)."""
        return {
            "instrument": self.instrument,
            "granularity": self.granularity,
            "rows": self.rows,
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
            "expected_bars": self.expected_bars,
            "coverage": round(self.coverage, 6),
            "gaps": self.gaps,
            "scheduled": self.scheduled,
            "duplicate_keys": self.duplicate_keys,
            "quarantine": self.quarantine,
        }


def _minutes(ts_us: np.ndarray) -> np.ndarray:
    return (ts_us - CALENDAR_ANCHOR.timestamp() * 1e6) / 60e6


def _trading_minutes_per_bar(step: float) -> float:
    """Trading minutes one bar covers: its length below a day, a session for D, five sessions for W."""
    if step < 1440:
        return step
    return (
        SESSION_MINUTES * step / 1440
        if step < WEEK_MINUTES
        else TRADING_MINUTES_PER_WEEK * step / WEEK_MINUTES
    )


def candle_health(
    candles: pl.DataFrame, instrument: str, granularity: str, quarantine: dict[str, int] | None = None
) -> HealthReport:
    """Rows, time range, gaps by size, scheduled closures and quarantine counts of one series.

    ``candles`` may hold several series; only ``(instrument, granularity)`` is looked at. A gap is the
    time between one bar's close and the next bar's start; its size is the trading minutes (per the
    OANDA CFD calendar) it covers, in bars. Gaps that cover no trading minute are scheduled closures.
    """
    series = candles.filter((pl.col("instrument") == instrument) & (pl.col("granularity") == granularity))
    duplicates = series.height - series.select(pl.col("ts").n_unique()).item() if series.height else 0
    series = series.select("ts").unique().sort("ts")
    step = bar_minutes(granularity)
    if series.height == 0:
        return HealthReport(instrument, granularity, 0, None, None, 0, 0.0, quarantine=dict(quarantine or {}))
    start = _minutes(series["ts"].dt.epoch("us").to_numpy().astype(np.float64))
    closes = start[:-1] + step
    trading_missing = trading_minutes_before(start[1:]) - trading_minutes_before(closes)
    elapsed = start[1:] - closes
    hole = elapsed > 1e-9
    scheduled = hole & (trading_missing < 1e-9)
    unscheduled_bars = trading_missing[hole & ~scheduled] / step
    gaps: dict[str, dict[str, int]] = {}
    lower = 0.0
    for label, upper in GAP_BUCKETS:
        inside = (unscheduled_bars > lower) & (unscheduled_bars <= upper)
        gaps[label] = {
            "count": int(inside.sum()),
            "missing_bars": int(np.ceil(unscheduled_bars[inside]).sum()),
        }
        lower = upper
    weekend = scheduled & (elapsed >= 24 * 60)
    expected_trading = trading_minutes_before(start[-1:] + step) - trading_minutes_before(start[:1])
    expected = round(float(expected_trading[0]) / _trading_minutes_per_bar(step))
    return HealthReport(
        instrument=instrument,
        granularity=granularity,
        rows=series.height,
        first_ts=series["ts"][0],
        last_ts=series["ts"][-1],
        expected_bars=expected,
        coverage=series.height / expected if expected else 0.0,
        gaps=gaps,
        scheduled={"daily_break": int((scheduled & ~weekend).sum()), "weekend": int(weekend.sum())},
        duplicate_keys=int(duplicates),
        quarantine=dict(sorted((quarantine or {}).items())),
    )


def quarantine_counts(quarantine: pl.DataFrame, table: str = "bronze.candles") -> dict[str, int]:
    """Quarantined records of ``table`` per reason code (a record with two reasons counts in both)."""
    rows = quarantine.filter(pl.col("table") == table)
    if rows.height == 0:
        return {}
    counts = rows.select(pl.col("reasons").explode(empty_as_null=False)).group_by("reasons").len()
    return dict(sorted(zip(counts["reasons"].to_list(), counts["len"].to_list(), strict=True)))
