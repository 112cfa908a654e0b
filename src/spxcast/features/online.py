"""The online path: a model's whole input row for the newest bar of one series.

One function, :func:`online_row`, returns every catalog feature a model reads — market features, news
signals as of the bar's close, horizon lags — for the LAST bar of a trailing window of bars, from that
window and the scored articles, in the model's column order. Each family comes from the same definitions as
the batch build, on only the history the features declare they need (:func:`history_need`), so the row
equals the bar's gold.features row: the market features are the catalog's expressions evaluated for the
last row only (:mod:`spxcast.features.lastrow`, Polars where that cannot), the news signals the batch
function at one close (:func:`spxcast.features.news.signals_at`), the horizon lags the labels' own horizon
returns on the few bars they read (:func:`spxcast.features.lags.last_bar_lags`).

Pure: no I/O, no clock. The lake reader that gathers the inputs is :func:`spxcast.lake.online.online_inputs`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from spxcast.errors import DataQualityError, SchemaError
from spxcast.features.build import SERIES_KEY, feature_frame, market_specs
from spxcast.features.catalog import BAR_COLUMNS, LAGS_GROUP, NEWS_GROUP, Catalog, FeatureContext, FeatureSpec
from spxcast.features.lags import lag_name, last_bar_lags
from spxcast.features.lastrow import LastRowProgram, NotEvaluable
from spxcast.features.news import article_events, bar_closes_us, signals_from_events
from spxcast.lake.tables import UTC_TS, epoch_us
from spxcast.timeutil import to_epoch_us

log = logging.getLogger(__name__)

ARTICLE_COLUMNS = ("received_at", "score", "confidence")


@dataclass(frozen=True)
class HistoryNeed:
    """How much history the features of a model need to compute the newest bar exactly.

    Parameters
    ----------
    bars : trailing real bars, the newest included (market features' largest lookback).
    bar_minutes : minutes of bars before the newest bar's start (time-matched horizon lags): every bar
        with ``ts >= ts_newest - bar_minutes`` is needed.
    article_minutes : minutes of scored articles before the newest bar's close: every article with
        ``received_at`` in ``(close - article_minutes, close]``.
    """

    bars: int
    bar_minutes: float
    article_minutes: float

    def keep_bars(self, bars: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``bars`` (one series, sorted by ts) its last bar needs: the union of both rules."""
        if bars.is_empty():
            return bars
        return bars.tail(self.rows_of(epoch_us(bars["ts"])))

    def rows_of(self, ts_us: np.ndarray) -> int:
        """How many trailing bars of a series with bar starts ``ts_us`` (microseconds, sorted) its last bar
        needs."""
        since = ts_us[-1] - round(self.bar_minutes * 60_000_000)
        return max(self.bars, ts_us.size - int(np.searchsorted(ts_us, since, side="left")))

    def most_rows(self, bar: timedelta) -> int:
        """The most trailing bars :meth:`rows_of` can ask for in a series with at most one bar per ``bar``
        (bar length): the size of a window kept before its bars are known."""
        return max(self.bars, math.ceil(self.bar_minutes * 60 / bar.total_seconds()) + 1)

    def article_span_us(self) -> int:
        """``article_minutes`` in microseconds: a bar needs the articles received in
        ``(close - span, close]``."""
        return round(self.article_minutes * 60_000_000)

    def keep_articles(self, articles: pl.DataFrame, close: datetime) -> pl.DataFrame:
        """The articles of a frame (received_at, …) received in ``(close - article_minutes, close]``."""
        received = epoch_us(articles["received_at"])
        until = to_epoch_us(close)
        return articles.filter((received > until - self.article_span_us()) & (received <= until))

    def articles_for(self, articles: ArticleArrays, close_us: int) -> ArticleArrays:
        """:meth:`keep_articles` of :class:`ArticleArrays` (``close_us``: the bar's close in microseconds
        since the epoch)."""
        return articles.within(close_us - self.article_span_us(), close_us)


@dataclass(frozen=True)
class BarArrays:
    """Trailing bars of one series as NumPy, so that the online path needs no query per bar.

    ``ts_us``: bar starts (int64 microseconds since the epoch, sorted, unique); ``columns``: the other bar
    columns present (open … ask_close) as float64, NaN for null; :attr:`frame`: the same bars in Polars,
    for the features only Polars computes. :meth:`head` and :meth:`tail` are views, not copies.
    """

    ts_us: np.ndarray
    columns: Mapping[str, np.ndarray]
    source: pl.DataFrame
    offset: int = 0

    @classmethod
    def of(cls, bars: pl.DataFrame, need: HistoryNeed | None = None) -> BarArrays:
        """The bars of ``bars`` (one series: ts, open, high, low, close, volume, optionally bid_close and
        ask_close; any order), checked (one series, unique ts) and sorted; with ``need``, only the trailing
        bars the newest one needs (:meth:`HistoryNeed.rows_of`)."""
        bars, ts_us = _window(bars)
        if need is not None:
            rows = need.rows_of(ts_us)
            bars, ts_us = bars.tail(rows), ts_us[-rows:]
        columns = {
            c: bars[c].to_numpy().astype(np.float64, copy=False)
            for c in BAR_COLUMNS
            if c != "ts" and c in bars.columns
        }
        return cls(ts_us, columns, bars)

    @property
    def height(self) -> int:
        return int(self.ts_us.size)

    @property
    def frame(self) -> pl.DataFrame:
        """These bars as a Polars frame (a slice of the frame they were made from)."""
        return self.source.slice(self.offset, self.height)

    def head(self, rows: int) -> BarArrays:
        """The first ``rows`` bars."""
        return BarArrays(
            self.ts_us[:rows], {c: v[:rows] for c, v in self.columns.items()}, self.source, self.offset
        )

    def tail(self, rows: int) -> BarArrays:
        """The last ``rows`` bars."""
        start = max(0, self.height - rows)
        return BarArrays(
            self.ts_us[start:],
            {c: v[start:] for c, v in self.columns.items()},
            self.source,
            self.offset + start,
        )


@dataclass(eq=False)
class ArticleArrays:
    """Scored articles as NumPy, in time order: ``received_us`` (int64 microseconds since the epoch),
    ``score``, ``confidence`` (float64). Their :func:`~spxcast.features.news.article_events` are built once
    per set of articles, so bars that see the same articles share them."""

    received_us: np.ndarray
    score: np.ndarray
    confidence: np.ndarray
    _events: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _within: tuple[int, int, ArticleArrays] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, articles: pl.DataFrame) -> ArticleArrays:
        """From a frame with received_at (UTC), score in [-1, 1] and confidence in [0, 1]."""
        missing = [c for c in ARTICLE_COLUMNS if c not in articles.columns]
        if missing:
            raise SchemaError(f"online row: the articles lack columns {missing}; got {articles.columns}")
        received = epoch_us(articles["received_at"])
        order = np.argsort(received, kind="stable")
        return cls(
            received[order],
            articles["score"].to_numpy().astype(np.float64)[order],
            articles["confidence"].to_numpy().astype(np.float64)[order],
        )

    def within(self, since_us: int, until_us: int) -> ArticleArrays:
        """The articles received in ``(since_us, until_us]``; the same object while that set is unchanged
        (consecutive bars mostly see the same articles)."""
        first = int(np.searchsorted(self.received_us, since_us, side="right"))
        stop = int(np.searchsorted(self.received_us, until_us, side="right"))
        if self._within is None or self._within[:2] != (first, stop):
            part = ArticleArrays(
                self.received_us[first:stop], self.score[first:stop], self.confidence[first:stop]
            )
            self._within = (first, stop, part)
        return self._within[2]

    def events(self) -> dict[str, np.ndarray]:
        """:func:`~spxcast.features.news.article_events` of these articles (built on first use)."""
        if self._events is None:
            self._events = article_events(self.received_us, self.score, self.confidence)
        return self._events


def _specs(catalog: Catalog, names: Sequence[str] | None) -> list[FeatureSpec]:
    return list(catalog) if names is None else [catalog.get(n) for n in names]


def history_need(catalog: Catalog, names: Sequence[str] | None = None) -> HistoryNeed:
    """The history the features ``names`` (default: the whole catalog) need for the newest bar.

    Market features need their ``lookback`` bars; news features ``span_minutes`` of articles; horizon
    lags ``span_minutes`` of bars (horizons in minutes) or their ``lookback`` bars (horizons in bars).
    """
    specs = _specs(catalog, names)
    return HistoryNeed(
        bars=max((s.lookback for s in specs), default=1),
        bar_minutes=max((s.span_minutes for s in specs if s.group == LAGS_GROUP), default=0.0),
        article_minutes=max((s.span_minutes for s in specs if s.group == NEWS_GROUP), default=0.0),
    )


class _Plan:
    """What :func:`online_row` prepares once per (catalog, context, names): specs by family and the need."""

    def __init__(self, catalog: Catalog, context: FeatureContext, names: Sequence[str] | None) -> None:
        specs = _specs(catalog, names)
        duplicated = sorted({s.name for s in specs if [t.name for t in specs].count(s.name) > 1})
        if duplicated:
            raise SchemaError(f"online row: features {duplicated} are asked for twice")
        self.catalog = catalog
        self.context = context
        self.names = [s.name for s in specs]
        self.market = market_specs(Catalog(s for s in specs if s.expr is not None))
        self.program = _program(self.market)
        self.uncompiled = [s for s in self.market if s.name in self.program.unsupported]
        if self.uncompiled:
            log.info("online row: %s computed by Polars, not NumPy", [s.name for s in self.uncompiled])
        self.checked = False
        self.news = [s.name for s in specs if s.group == NEWS_GROUP]
        by_name = {
            lag_name(context.horizon_minutes, k, context.horizon_bars): k
            for k in range(1, context.horizon_lags + 1)
        }
        self.lag_names = [s.name for s in specs if s.group == LAGS_GROUP]
        self.lag_orders = [by_name[n] for n in self.lag_names]
        self.need = history_need(catalog, self.names)
        # Features are computed in float64 and put in the row as Float32; others are cast.
        self.casts = [pl.col(s.name).cast(s.dtype) for s in specs if s.dtype != pl.Float32]

    def _market(self, window: BarArrays) -> dict[str, float]:
        """The market features of the window's last bar: NumPy where it can, Polars for the rest."""
        out: dict[str, float] = {}
        try:
            values = self.program.run(_arrays(window, self.program.columns, self.program.rows))
        except NotEvaluable:  # fewer bars than the lookbacks (or a null a recursive mean reads)
            polars = self.market
        else:
            if not self.checked:
                values = self._check(window, values)
            out.update(zip(self.program.names, values.tolist(), strict=True))
            polars = self.uncompiled
        if polars:
            frame = feature_frame(window.tail(self.need.bars).frame, polars, cast=False).tail(1).collect()
            out.update((c.name, _number(c[0])) for c in frame.get_columns() if c.name != "ts")
        return out

    def _check(self, window: BarArrays, values: np.ndarray) -> np.ndarray:
        """On first use: compare the NumPy values with Polars' on the same window; features that differ
        (beyond float32 rounding and the recursive means' truncation) are computed by Polars for good."""
        program = self.program
        computed = [s for s in self.market if s.name in program.names]
        reference = feature_frame(window.tail(program.rows).frame, computed, cast=False).tail(1).collect()
        want = np.array([reference[n][0] for n in program.names], dtype=np.float64)
        same = (np.isnan(values) & np.isnan(want)) | (np.abs(values - want) <= 1e-6 + 1e-5 * np.abs(want))
        differing = [n for n, ok in zip(program.names, same, strict=True) if not ok]
        if differing:
            log.warning("online row: %s differ from Polars in NumPy; computed by Polars", differing)
            kept = [s for s in computed if s.name not in differing]
            self.program = _program(kept)
            self.program.unsupported += [*program.unsupported, *differing]
            self.uncompiled = [s for s in self.market if s.name in self.program.unsupported]
            values = self.program.run(_arrays(window, self.program.columns, self.program.rows))
        self.checked = True
        return values

    def _vector(self, bars: BarArrays, articles: ArticleArrays | None) -> np.ndarray:
        """The newest bar's features in :attr:`names` order, float32, NaN for null (before any cast)."""
        window = bars.tail(self.need.rows_of(bars.ts_us))
        values: dict[str, float] = {}
        if self.market:
            values.update(self._market(window))
        if self.news:
            if articles is None:
                raise SchemaError("online row: news features need the scored articles")
            close = bar_closes_us(window.ts_us[-1:], self.context)
            signals = signals_from_events(close, articles.events())
            values.update((n, float(signals[n][0])) for n in self.news)
        if self.lag_orders:
            lags = last_bar_lags(window.ts_us, window.columns["close"], self.context, self.lag_orders)
            values.update(zip(self.lag_names, lags, strict=True))
        return np.array([values[n] for n in self.names], dtype=np.float32)

    def values(self, bars: BarArrays, articles: ArticleArrays | None) -> np.ndarray:
        """:meth:`row` as NumPy: float32 in :attr:`names` order, NaN for null."""
        if self.casts:  # a feature whose gold dtype is not Float32: the row's casts decide its value
            return self._frame(bars, self._vector(bars, articles)).drop("ts").to_numpy().astype(np.float32)
        return self._vector(bars, articles)

    def row(self, bars: pl.DataFrame, articles: pl.DataFrame) -> pl.DataFrame:
        arrays = BarArrays.of(bars, self.need)
        return self._frame(arrays, self._vector(arrays, ArticleArrays.of(articles) if self.news else None))

    def _frame(self, bars: BarArrays, row: np.ndarray) -> pl.DataFrame:
        """The one-row frame of the newest bar of ``bars``: ``ts`` then the features, in gold's dtypes."""
        ts = pl.Series("ts", bars.ts_us[-1:], dtype=pl.Int64).cast(UTC_TS)
        # One Series transposed into the row: far cheaper than a Series per feature.
        # No names (no model deployed yet): the bar's time alone; Polars cannot transpose nothing.
        frame = (
            pl.Series(row, nan_to_null=True).to_frame().transpose(column_names=self.names)
            if self.names
            else pl.DataFrame()
        )
        if self.casts:
            frame = frame.with_columns(self.casts)
        frame.insert_column(0, ts)
        return frame


def _program(specs: Sequence[FeatureSpec]) -> LastRowProgram:
    """The NumPy last-row program of market specs' expressions."""
    market = [(s.expr, s.name) for s in specs if s.expr is not None]
    return LastRowProgram([e for e, _ in market], [n for _, n in market])


def _number(value: object) -> float:
    """A feature value as a float (null: NaN)."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _arrays(window: BarArrays, columns: Sequence[str], rows: int) -> dict[str, np.ndarray]:
    """The last ``rows`` bars' ``columns`` as NumPy: ts in microseconds since the epoch, the others float64
    with NaN for null (absent optional quotes: all NaN)."""
    if window.height < rows:
        raise NotEvaluable(f"{window.height} bars, the market features need {rows}")
    out: dict[str, np.ndarray] = {}
    for name in columns:
        if name == "ts":
            out[name] = window.ts_us[-rows:]
        elif name in window.columns:
            out[name] = window.columns[name][-rows:]
        else:
            out[name] = np.full(rows, np.nan)
    return out


def _window(bars: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """Check the trailing bars: one series, bar columns, unique ts. Returns them sorted by ts, and their
    starts in microseconds since the epoch."""
    if bars.is_empty():
        raise DataQualityError("online row: the window holds no bars")
    for column in SERIES_KEY:
        if column in bars.columns and bars[column].n_unique() > 1:
            raise DataQualityError(f"online row: the window mixes several {column} values; pass one series")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns and c not in ("bid_close", "ask_close")]
    if missing:
        raise SchemaError(f"online row: the bars lack columns {missing}; got {bars.columns}")
    if bars["ts"].null_count():
        raise DataQualityError("online row: a bar of the window has no ts")
    ts = epoch_us(bars["ts"])
    steps = np.diff(ts)
    if (steps < 0).any():
        bars = bars.sort("ts")
        ts = epoch_us(bars["ts"])
        steps = np.diff(ts)
    if (steps == 0).any():
        raise DataQualityError("online row: several bars share a ts; the window must hold unique bars")
    return bars, ts


@lru_cache(maxsize=32)
def _plan(catalog: Catalog, context: FeatureContext, names: tuple[str, ...] | None) -> _Plan:
    """The plan of one (catalog, context, names); catalogs hash by identity."""
    return _Plan(catalog, context, names)


def online_row(
    bars: pl.DataFrame,
    articles: pl.DataFrame,
    catalog: Catalog,
    context: FeatureContext,
    names: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The input row of the NEWEST bar of ``bars``: ``ts`` then the features ``names`` in that order.

    Parameters
    ----------
    bars : trailing bars of ONE series (instrument, granularity): ts (bar start, UTC), open, high, low,
        close, volume, optionally bid_close/ask_close; real bars only. The last bar (by ts) is computed;
        at least :func:`history_need` of history must be present for the values to equal gold's (with
        less, features whose history is missing come out null or truncated).
    articles : scored articles: received_at (UTC), score in [-1, 1], confidence in [0, 1], at least
        those the need asks for (:meth:`HistoryNeed.keep_articles` trims a longer history; older ones only
        make the decayed sums more exact). Only those with ``received_at <= `` the bar's close count, so
        passing later ones is harmless.
    catalog : the running feature catalog (built from ``context``). Plans are compiled on the first call
        (a fraction of a second) and cached per catalog OBJECT: build the catalog once and reuse it.
    context : bar size, horizon, lags and label tolerance the catalog was built with.
    names : the model's feature names in its column order (default: every catalog feature).

    Returns
    -------
    One row: ``ts`` and each feature in its catalog dtype, equal to the bar's gold.features row.
    """
    key = tuple(names) if names is not None else None
    return _plan(catalog, context, key).row(bars, articles)


def online_values(
    bars: BarArrays,
    articles: ArticleArrays | None,
    catalog: Catalog,
    context: FeatureContext,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """:func:`online_row` for a caller that keeps its window as NumPy (the live loop, bar after bar):
    the newest bar's features ``names`` as float32 in that order, NaN for null, equal to that row.

    ``bars`` (:meth:`BarArrays.of`) and ``articles`` (:meth:`ArticleArrays.of`; None when no news
    feature is asked for) have the meaning of :func:`online_row`'s arguments.
    """
    key = tuple(names) if names is not None else None
    return _plan(catalog, context, key).values(bars, articles)
