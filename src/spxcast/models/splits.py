"""Chronological train / (tune) / valid / test / OOT / OOT2 splits with a purge gap.

Choice: OOT2 (the most recent ``oot2_rows`` labelled rows) is carved out FIRST from the end, so it is
always exactly the latest data, whatever the fractions; the remaining rows are then split chronologically
by the fractions (default 60/15/15/10) into train, valid, test and OOT. With ``tune_share`` > 0 the first
part of the validation fraction becomes the ``tune`` split (Optuna's objective and early stopping) and
the rest stays ``valid``: rows no fit, trial or early stop has seen, on which selection tests the
candidates against the zero forecast.

Purge: each split ends strictly more than ``purge_minutes`` (>= the horizon, plus the label tolerance)
before the next split begins, so the label window ``[ts, ts + H]`` of every row lies before the first row
of every later split. For a horizon of N bars on a trading calendar (``positions`` given) a row is kept
only when its N-th next bar lies before the next split's first bar (position + N < that bar's position).
Rows are purged from the END of the earlier split (its label windows are what would reach forward); the
later split keeps its first rows. Counts of purged rows are recorded.
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
TUNE = "tune"
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
    purge_bars: int | None = None

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
        document: dict[str, Any] = {
            "horizon_minutes": self.horizon_minutes,
            "purge_minutes": self.purge_minutes,
            "splits": [r.to_dict() for r in self.ranges],
        }
        if self.purge_bars is not None:
            document["purge_bars"] = self.purge_bars
        return document

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
        bars = data.get("purge_bars")
        return cls(
            int(data["horizon_minutes"]),
            float(data["purge_minutes"]),
            ranges,
            None if bars is None else int(bars),
        )


def make_splits(
    ts: pl.Series,
    fractions: Sequence[float],
    oot2_rows: int,
    horizon_minutes: int,
    label_tolerance_minutes: float = 0.0,
    tune_share: float = 0.0,
    positions: np.ndarray | None = None,
    horizon_bars: int | None = None,
) -> SplitBoundaries:
    """Split labelled rows by time.

    Parameters
    ----------
    ts : bar starts of the labelled rows (UTC), strictly increasing.
    fractions : train, valid, test, OOT fractions of the rows left after OOT2 (sum 1).
    oot2_rows : size of OOT2, the most recent rows (0: no OOT2).
    horizon_minutes : H; the purge gap is H plus ``label_tolerance_minutes``.
    tune_share : share of the validation rows that form the ``tune`` split before ``valid`` (0: none).
    positions, horizon_bars : for a horizon in bars, each row's trading-calendar position and N; the
        purge then keeps a row only when position + N is below the next split's first position.
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
    if not 0 <= tune_share < 1:
        raise ModelError(f"tune_share must be in [0, 1); got {tune_share}")
    cuts = [0, *(round(rest * c) for c in np.cumsum(fractions)[:-1]), rest]
    bounds = [(cuts[i], cuts[i + 1]) for i in range(4)]
    names = list(SPLIT_NAMES[:4])
    if tune_share > 0:
        valid_start, valid_end = bounds[1]
        middle = valid_start + round((valid_end - valid_start) * tune_share)
        bounds[1:2] = [(valid_start, middle), (middle, valid_end)]
        names.insert(1, TUNE)
    if oot2_rows > 0:
        bounds.append((rest, n))
        names.append("oot2")
    purge_minutes = float(horizon_minutes) + float(label_tolerance_minutes)
    purge = np.timedelta64(round(purge_minutes * 60_000_000), "us")
    by_bars = positions is not None and horizon_bars is not None
    ranges: list[SplitRange] = []
    series = ts.cast(pl.Datetime("us", "UTC"))
    for i, (name, (start, end)) in enumerate(zip(names, bounds, strict=True)):
        kept_end = end
        if i + 1 < len(bounds) and by_bars:
            assert positions is not None and horizon_bars is not None
            first_next = positions[bounds[i + 1][0]] - horizon_bars
            kept_end = max(start, min(end, int(np.searchsorted(positions, first_next, side="left"))))
        elif i + 1 < len(bounds):
            first_next = values[bounds[i + 1][0]]
            kept_end = max(start, min(end, int(np.searchsorted(values, first_next - purge, side="left"))))
        if kept_end <= start:
            raise DataQualityError(
                f"split {name} is empty after purging {purge_minutes:g} minutes before the next split; "
                f"it had {end - start} rows: add data or lower oot2_rows"
            )
        ranges.append(SplitRange(name, series[start], series[kept_end - 1], kept_end - start, end - kept_end))
    return SplitBoundaries(horizon_minutes, purge_minutes, tuple(ranges), horizon_bars if by_bars else None)


def purge_gap(boundaries: SplitBoundaries) -> timedelta:
    """The smallest time between the end of a split and the start of the next."""
    gaps = [b.start - a.end for a, b in zip(boundaries.ranges, boundaries.ranges[1:], strict=False)]
    return min(gaps) if gaps else timedelta.max
