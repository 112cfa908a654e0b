"""The one place the prediction service gets feature vectors from.

:class:`FeatureSource` keeps every gold row of the served series in memory as NumPy arrays (bar starts,
a Float32 matrix, closes, labels): a historical bar's vector is a row lookup and equals the batch build.
The NEWEST closed bar comes from the online path when bronze.candles holds a bar that gold.features does
not have yet: the background refresh (:meth:`FeatureSource.refresh`, on a new version of either table)
reads the trailing window the deployed models' features need (:func:`spxcast.features.online.history_need`
over the names given to :meth:`FeatureSource.require`) with :func:`spxcast.lake.online.online_inputs` and
computes that bar's row with :func:`spxcast.features.online.online_row` — the same values gold will hold
once rebuilt. A request therefore does no DataFrame work and no I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.errors import SpxcastError
from spxcast.features.catalog import feature_catalog, feature_context
from spxcast.features.labels import label_names
from spxcast.features.online import history_need, online_row
from spxcast.lake import Lake
from spxcast.lake.online import online_inputs
from spxcast.serving.errors import NotFound
from spxcast.timeutil import bar_length, from_epoch_us, to_epoch_us

log = logging.getLogger(__name__)

GOLD = "gold.features"
CANDLES = "bronze.candles"
_NOT_FEATURES = {"instrument", "granularity", "ts", "label_ok"}
# The tables the online row reads: a new version of any of them recomputes it (articles scored later count).
_ONLINE_INPUTS = (CANDLES, "bronze.news", "silver.news_scores")


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
    """Gold rows of the configured series in memory, plus the online row of a newer bronze bar.

    Both are refreshed off the request path (:meth:`refresh`) when gold.features or bronze.candles has a
    new version, or when the deployed models' feature names change (:meth:`require`).
    """

    def __init__(self, settings: Settings, lake: Lake | None = None) -> None:
        from spxcast.sentiment import scorer_id

        self.instrument = settings.instrument
        self.granularity = settings.granularity
        self.horizon_minutes = settings.horizon_minutes
        self.target = label_names(settings.horizon_minutes, settings.horizon_bars)[0]
        self.bar = bar_length(settings.granularity)
        self.lake = lake or Lake.from_settings(settings)
        self._context = feature_context(settings)
        self._catalog = feature_catalog(settings)  # built once: online plans are cached per catalog object
        self._scorer = scorer_id(settings.sentiment)
        self._names: tuple[str, ...] = ()
        self._series: _Series | None = None
        self._latest: FeatureRow | None = None
        self._latest_key: tuple[object, ...] | None = None
        self._lock = threading.Lock()

    # ----- loading (off the request path)
    def require(self, names: Iterable[str]) -> None:
        """Compute the online row for the features ``names`` (the union over the deployed models' inputs).

        Names outside the running catalog are left out (a model reading them is refused at load). Refreshes
        at once when the set changed.
        """
        wanted = tuple(sorted({n for n in names if n in self._catalog}))
        if wanted != self._names:
            self._names = wanted
            self.refresh()

    def refresh(self, force: bool = False) -> bool:
        """Reload gold rows when ``gold.features`` has a new version, and recompute the online row of the
        newest bronze bar when gold, bronze.candles, the news or its scores, or the required names
        changed; returns whether anything was reloaded."""
        with self._lock:
            version = self.lake.version(GOLD)
            reloaded = force or self._series is None or self._series.version != version
            if reloaded:
                self._series = self._load(version)
                log.info("feature source: %d rows of %s (gold v%s)", len(self._series.ts_us), GOLD, version)
            key = (version, *self.lake.versions(_ONLINE_INPUTS).values(), self._names)
            if reloaded or key != self._latest_key:
                self._latest = self._online(self._series)  # type: ignore[arg-type]
                self._latest_key = key
                reloaded = True
            return reloaded

    def _online(self, series: _Series) -> FeatureRow | None:
        """The online row of bronze's newest bar when gold does not hold it yet (else None: gold serves)."""
        if not self._names or not self.lake.exists(CANDLES):
            return None
        newest = (
            self.lake.series(CANDLES, self.instrument, self.granularity)
            .select(pl.col("ts").max())
            .collect()
            .item()
        )
        if newest is None or (len(series.ts_us) and to_epoch_us(newest) <= series.ts_us[-1]):
            return None
        need = history_need(self._catalog, self._names)
        try:
            bars, articles = online_inputs(
                self.lake, self.instrument, self.granularity, newest, need, self._scorer
            )
            row = online_row(bars, articles, self._catalog, self._context, self._names)
        except SpxcastError as exc:
            log.warning("feature source: no online row for bar %s: %s", newest.isoformat(), exc)
            return None
        log.info("feature source: online row of bar %s (%d bars of history)", newest.isoformat(), bars.height)
        return FeatureRow(
            instrument=self.instrument,
            bar_ts=newest,
            as_of=newest + self.bar,
            price=float(bars["close"][-1]),
            values=np.ascontiguousarray(row.select(self._names).to_numpy()[0], dtype=np.float32),
            columns={name: i for i, name in enumerate(self._names)},
        )

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
    def _current(self, instrument: str, allow_empty: bool = False) -> _Series:
        if instrument != self.instrument:
            raise NotFound(f"unknown instrument {instrument!r}; this server serves {self.instrument!r}")
        series = self._series
        if series is None or (len(series.ts_us) == 0 and not allow_empty):
            raise NotFound(
                f"{GOLD} has no rows for {self.instrument} {self.granularity}; build features first"
            )
        return series

    def row(self, instrument: str, ts: datetime | None = None) -> FeatureRow:
        """The inputs at the close of bar ``ts`` (bar start, UTC), or of the newest closed bar.

        The newest bar is bronze's newest through the online path when gold does not have it yet, else
        gold's newest; any other bar is its gold row.
        """
        latest = self._latest
        series = self._current(instrument, allow_empty=latest is not None)
        if latest is not None and (ts is None or to_epoch_us(ts) == to_epoch_us(latest.bar_ts)):
            return latest
        if ts is None:
            index = len(series.ts_us) - 1
        else:
            key = to_epoch_us(ts)
            index = int(np.searchsorted(series.ts_us, key))
            if len(series.ts_us) == 0:
                raise NotFound(f"{GOLD} has no rows for {self.instrument} {self.granularity}; build features")
            if index >= len(series.ts_us) or series.ts_us[index] != key:
                raise NotFound(
                    f"no {self.granularity} bar of {instrument} starts at {ts.isoformat()} in {GOLD}; "
                    f"bars run from {from_epoch_us(series.ts_us[0]).isoformat()} "
                    f"to {from_epoch_us(series.ts_us[-1]).isoformat()}"
                )
        bar_ts = from_epoch_us(series.ts_us[index])
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
        key = to_epoch_us(ts)
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
