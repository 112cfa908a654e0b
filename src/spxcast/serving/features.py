"""The one place the prediction service gets feature vectors from.

:class:`FeatureSource` keeps every gold row of the served series in memory as NumPy arrays (bar starts,
a Float32 matrix, closes, labels), so a request does no DataFrame work and no I/O: the newest closed bar's
vector (or any historical bar's) is a row lookup. A background refresh reloads the series when the lake's
``gold.features`` version changes. Lagged horizon returns (the AR model's inputs) are added exactly as
gold holds them (:mod:`spxcast.features.lags`).

This is the switch point for the online path (``spxcast.features.online``): :meth:`FeatureSource.row`
is the only function the service calls for a vector.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.features.labels import label_names
from spxcast.features.lags import lag_name, lags_from_labels
from spxcast.lake import Lake
from spxcast.serving.errors import NotFound
from spxcast.timeutil import bar_length

log = logging.getLogger(__name__)

GOLD = "gold.features"
CANDLES = "bronze.candles"
_NOT_FEATURES = {"instrument", "granularity", "ts", "label_ok"}
_LAG = re.compile(r"^lag(\d+)_ret_(\d+)m_pct$")


@dataclass(frozen=True)
class FeatureRow:
    """One bar's model inputs.

    ``bar_ts`` is the bar start (UTC); every value was known at ``as_of``, the bar's close. ``price`` is the
    bar's close (mid), or None when the lake has no candle for it.
    """

    instrument: str
    bar_ts: datetime
    as_of: datetime
    price: float | None
    values: np.ndarray
    columns: dict[str, int]

    def vector(self, names: Iterable[str]) -> np.ndarray:
        """The values of ``names`` in that order (Float32, one row)."""
        return self.values[[self.columns[n] for n in names]]


@dataclass(frozen=True)
class _Series:
    version: int | None
    ts_us: np.ndarray
    matrix: np.ndarray
    columns: dict[str, int]
    close: np.ndarray
    label: np.ndarray


class FeatureSource:
    """Gold rows of the configured instrument and bar size, in memory, refreshed when gold changes."""

    def __init__(self, settings: Settings, lake: Lake | None = None) -> None:
        self.instrument = settings.instrument
        self.granularity = settings.granularity
        self.horizon_minutes = settings.horizon_minutes
        self.target = label_names(settings.horizon_minutes, settings.horizon_bars)[0]
        self.bar = bar_length(settings.granularity)
        self.lake = lake or Lake.from_settings(settings)
        self._lags = 0
        self._series: _Series | None = None
        self._lock = threading.Lock()

    # ----- loading
    def require(self, names: Iterable[str]) -> None:
        """Make sure every name in ``names`` is a column (adds lag columns, reloading once if needed)."""
        lags = [int(m[1]) for n in names if (m := _LAG.match(n)) and int(m[2]) == self.horizon_minutes]
        if lags and max(lags) > self._lags:
            self._lags = max(lags)
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> bool:
        """Reload the series when ``gold.features`` has a new version; returns whether it reloaded."""
        with self._lock:
            version = self.lake.version(GOLD)
            if not force and self._series is not None and self._series.version == version:
                return False
            self._series = self._load(version)
            log.info("feature source: %d rows of %s (gold v%s)", len(self._series.ts_us), GOLD, version)
            return True

    def _load(self, version: int | None) -> _Series:
        if version is None:
            empty = np.empty(0)
            return _Series(None, empty.astype(np.int64), np.empty((0, 0), np.float32), {}, empty, empty)
        frame = (
            self.lake.scan(GOLD, version)
            .filter((pl.col("instrument") == self.instrument) & (pl.col("granularity") == self.granularity))
            .sort("ts")
            .collect()
        )
        absent = [
            k for k in range(1, self._lags + 1) if lag_name(self.horizon_minutes, k) not in frame.columns
        ]
        if absent and self.target in frame.columns:  # gold built before the lags were catalog features
            frame = frame.hstack(
                lags_from_labels(frame, self.target, self.horizon_minutes, absent).get_columns()
            )
        frame = frame.join(self._closes(), on="ts", how="left") if "close" not in frame.columns else frame
        names = [c for c, t in frame.schema.items() if c not in _NOT_FEATURES and t.is_numeric()]
        matrix = frame.select(pl.col(names).cast(pl.Float32)).to_numpy() if names else np.empty((0, 0))
        label = frame[self.target] if self.target in frame.columns else pl.Series([None] * frame.height)
        return _Series(
            version=version,
            ts_us=frame["ts"].dt.epoch("us").to_numpy(),
            matrix=np.ascontiguousarray(matrix, dtype=np.float32),
            columns={name: i for i, name in enumerate(names)},
            close=frame["close"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            label=label.cast(pl.Float64).fill_null(np.nan).to_numpy(),
        )

    def _closes(self) -> pl.DataFrame:
        schema = {"ts": pl.Datetime("us", "UTC"), "close": pl.Float64()}
        if not self.lake.exists(CANDLES):
            return pl.DataFrame(schema=schema)
        return (
            self.lake.scan(CANDLES)
            .filter((pl.col("instrument") == self.instrument) & (pl.col("granularity") == self.granularity))
            .select("ts", "close")
            .collect()
            .cast(schema)  # type: ignore[arg-type]
        )

    # ----- lookups (the request path)
    def _current(self, instrument: str) -> _Series:
        if instrument != self.instrument:
            raise NotFound(f"unknown instrument {instrument!r}; this server serves {self.instrument!r}")
        series = self._series
        if series is None or len(series.ts_us) == 0:
            raise NotFound(
                f"{GOLD} has no rows for {self.instrument} {self.granularity}; build features first"
            )
        return series

    def row(self, instrument: str, ts: datetime | None = None) -> FeatureRow:
        """The inputs at the close of bar ``ts`` (bar start, UTC), or of the newest closed bar."""
        series = self._current(instrument)
        if ts is None:
            index = len(series.ts_us) - 1
        else:
            key = _epoch_us(ts)
            index = int(np.searchsorted(series.ts_us, key))
            if index >= len(series.ts_us) or series.ts_us[index] != key:
                raise NotFound(
                    f"no {self.granularity} bar of {instrument} starts at {ts.isoformat()} in {GOLD}; "
                    f"bars run from {_from_us(series.ts_us[0]).isoformat()} "
                    f"to {_from_us(series.ts_us[-1]).isoformat()}"
                )
        bar_ts = _from_us(series.ts_us[index])
        close = float(series.close[index])
        return FeatureRow(
            instrument=instrument,
            bar_ts=bar_ts,
            as_of=bar_ts + self.bar,
            price=close if np.isfinite(close) else None,
            values=series.matrix[index],
            columns=series.columns,
        )

    def rows(self, instrument: str, stamps: Iterable[datetime]) -> list[FeatureRow]:
        return [self.row(instrument, ts) for ts in stamps]

    def realised(self, instrument: str, ts: datetime) -> float | None:
        """The realised return (percent) of the horizon after bar ``ts``: its label once known, else None."""
        try:
            series = self._current(instrument)
        except NotFound:
            return None
        key = _epoch_us(ts)
        index = int(np.searchsorted(series.ts_us, key))
        if index >= len(series.ts_us) or series.ts_us[index] != key:
            return None
        value = float(series.label[index])
        return value if np.isfinite(value) else None

    @property
    def size(self) -> int:
        series = self._series
        return 0 if series is None else len(series.ts_us)

    @property
    def columns(self) -> dict[str, int]:
        series = self._series
        return {} if series is None else series.columns


def _epoch_us(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int((ts - _EPOCH) // timedelta(microseconds=1))


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
