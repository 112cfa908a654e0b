"""Chronological train / valid / test / OOT / OOT2 splits with a purge gap.

Choice: OOT2 (the most recent ``oot2_rows`` labelled rows) is carved out FIRST from the end, so it is
always exactly the latest data, whatever the fractions; the remaining rows are then split chronologically
by the fractions (default 60/15/15/10) into train, valid, test and OOT.

Purge: each split ends strictly more than ``purge_minutes`` (>= the horizon, plus the label tolerance)
before the next split begins, so the label window ``[ts, ts + H]`` of every row lies before the first row
of every later split. Rows are purged from the END of the earlier split (its label windows are what would
reach forward); the later split keeps its first rows. Counts of purged rows are recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from spxcast.errors import DataQualityError, ModelError

SPLIT_NAMES = ("train", "valid", "test", "oot", "oot2")
EVALUATION_SPLITS = ("valid", "test", "oot", "oot2")


@dataclass(frozen=True)
class SplitRange:
    """One split: rows with ``start <= ts <= end`` (bar starts, UTC)."""

    name: str
    start: datetime
    end: datetime
    rows: int
    purged_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class SplitBoundaries:
    """The splits of one run, in time order; serialisable with the run."""

    horizon_minutes: int
    purge_minutes: float
    ranges: tuple[SplitRange, ...]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.ranges]

    def range(self, name: str) -> SplitRange:
        for r in self.ranges:
            if r.name == name:
                return r
        raise ModelError(f"no split named {name!r}; splits are {self.names}")

    def select(self, frame: pl.DataFrame, name: str) -> pl.DataFrame:
        """Rows of ``frame`` (sorted by ``ts``) that belong to split ``name``."""
        r = self.range(name)
        return frame.filter(pl.col("ts").is_between(r.start, r.end, closed="both"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon_minutes": self.horizon_minutes,
            "purge_minutes": self.purge_minutes,
            "splits": [r.to_dict() for r in self.ranges],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitBoundaries:
        ranges = tuple(
            SplitRange(
                name=r["name"],
                start=datetime.fromisoformat(r["start"]),
                end=datetime.fromisoformat(r["end"]),
                rows=int(r["rows"]),
                purged_rows=int(r["purged_rows"]),
            )
            for r in data["splits"]
        )
        return cls(int(data["horizon_minutes"]), float(data["purge_minutes"]), ranges)


def make_splits(
    ts: pl.Series,
    fractions: Sequence[float],
    oot2_rows: int,
    horizon_minutes: int,
    label_tolerance_minutes: float = 0.0,
) -> SplitBoundaries:
    """Split labelled rows by time.

    Parameters
    ----------
    ts : bar starts of the labelled rows (UTC), strictly increasing.
    fractions : train, valid, test, OOT fractions of the rows left after OOT2 (sum 1).
    oot2_rows : size of OOT2, the most recent rows (0: no OOT2).
    horizon_minutes : H; the purge gap is H plus ``label_tolerance_minutes``.
    """
    if len(fractions) != 4 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ModelError(f"split fractions must be 4 positive numbers summing to 1; got {list(fractions)}")
    values = ts.cast(pl.Datetime("us", "UTC")).to_numpy()
    n = len(values)
    if n > 1 and not (np.diff(values) > np.timedelta64(0)).all():
        raise ModelError("make_splits needs strictly increasing ts (one instrument and granularity, sorted)")
    rest = n - oot2_rows
    if rest < 50:
        raise DataQualityError(
            f"too few labelled rows to split: {n} rows, {oot2_rows} reserved for OOT2; need at least 50 more"
        )
    cuts = [0, *(round(rest * c) for c in np.cumsum(fractions)[:-1]), rest]
    bounds = [(cuts[i], cuts[i + 1]) for i in range(4)]
    names = list(SPLIT_NAMES[:4])
    if oot2_rows > 0:
        bounds.append((rest, n))
        names.append("oot2")
    purge_minutes = float(horizon_minutes) + float(label_tolerance_minutes)
    purge = np.timedelta64(round(purge_minutes * 60_000_000), "us")
    ranges: list[SplitRange] = []
    series = ts.cast(pl.Datetime("us", "UTC"))
    for i, (name, (start, end)) in enumerate(zip(names, bounds, strict=True)):
        kept_end = end
        if i + 1 < len(bounds):
            first_next = values[bounds[i + 1][0]]
            kept_end = max(start, min(end, int(np.searchsorted(values, first_next - purge, side="left"))))
        if kept_end <= start:
            raise DataQualityError(
                f"split {name} is empty after purging {purge_minutes:g} minutes before the next split; "
                f"it had {end - start} rows: add data or lower oot2_rows"
            )
        ranges.append(SplitRange(name, series[start], series[kept_end - 1], kept_end - start, end - kept_end))
    return SplitBoundaries(horizon_minutes, purge_minutes, tuple(ranges))


def purge_gap(boundaries: SplitBoundaries) -> timedelta:
    """The smallest time between the end of a split and the start of the next."""
    gaps = [b.start - a.end for a, b in zip(boundaries.ranges, boundaries.ranges[1:], strict=False)]
    return min(gaps) if gaps else timedelta.max
