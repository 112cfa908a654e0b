"""The data-health report of a candle series: a pure function of the stored bars and quarantine counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from spxcast.sources.market.calendar import bar_positions
from spxcast.timeutil import bar_length

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
    closures are counted apart in ``scheduled``: ``daily_break`` (shorter than a day, e.g. the CFD's
    21:00-22:00 UTC break) and ``weekend`` (a day or more: weekends and exchange holidays). ``coverage``
    is rows divided by the bars the calendar expects between the first and the last bar.
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


def candle_health(
    candles: pl.DataFrame,
    instrument: str,
    granularity: str,
    quarantine: dict[str, int] | None = None,
    calendar: str = "auto",
) -> HealthReport:
    """Rows, time range, gaps by size, scheduled closures and quarantine counts of one series.

    ``candles`` may hold several series; only ``(instrument, granularity)`` is looked at. Bars are placed
    on the instrument's trading calendar (``calendar``, ``auto``: see ``resolve_calendar_name``) by their
    position (session ordinal for daily bars, so 00:00 UTC stamps are understood; bar slot otherwise). A
    gap between two consecutive bars is the number of calendar bars between them; a pause that skips no
    calendar bar is a scheduled closure.
    """
    series = candles.filter((pl.col("instrument") == instrument) & (pl.col("granularity") == granularity))
    duplicates = series.height - series.select(pl.col("ts").n_unique()).item() if series.height else 0
    series = series.select("ts").unique().sort("ts")
    if series.height == 0:
        return HealthReport(instrument, granularity, 0, None, None, 0, 0.0, quarantine=dict(quarantine or {}))
    ts = series["ts"].cast(pl.Datetime("us", "UTC"))
    start = ts.dt.epoch("us").to_numpy().astype(np.int64)
    bar = bar_length(granularity)
    position = bar_positions(start, instrument, bar, calendar)
    missing = np.diff(position) - 1
    elapsed = (np.diff(start) - bar.total_seconds() * 1e6) / 60e6  # minutes between close and next start
    hole = elapsed > 1e-9
    unscheduled_bars = missing[missing > 0].astype(np.float64)
    scheduled = hole & (missing <= 0)
    gaps: dict[str, dict[str, int]] = {}
    lower = 0.0
    for label, upper in GAP_BUCKETS:
        inside = (unscheduled_bars > lower) & (unscheduled_bars <= upper)
        gaps[label] = {"count": int(inside.sum()), "missing_bars": int(unscheduled_bars[inside].sum())}
        lower = upper
    weekend = scheduled & (elapsed >= 24 * 60)
    expected = int(position[-1] - position[0] + 1)
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
