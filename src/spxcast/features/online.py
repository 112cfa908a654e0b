"""The online path: a model's whole input row for the newest bar of one series.

One function, :func:`online_row`, returns every catalog feature a model reads — market features, news
signals as of the bar's close, horizon lags — for the LAST bar of a trailing window of bars, from that
window and the scored articles, in the model's column order. Each family is computed by the same code as
the batch build (:mod:`spxcast.features.build`, :mod:`spxcast.features.news`,
:mod:`spxcast.features.lags`), on only the history the features declare they need
(:func:`history_need`), so the row equals the bar's gold.features row.

Pure: no I/O, no clock. The lake reader that gathers the inputs is :func:`spxcast.lake.online.online_inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import polars as pl

from spxcast.errors import DataQualityError, SchemaError
from spxcast.features.build import SERIES_KEY, market_specs, with_bar_columns
from spxcast.features.catalog import BAR_COLUMNS, LAGS_GROUP, NEWS_GROUP, Catalog, FeatureContext, FeatureSpec
from spxcast.features.lags import horizon_lags, lag_inputs, lag_name
from spxcast.features.news import news_signals
from spxcast.features.plans import evaluate, staged_plan
from spxcast.lake.tables import UTC_TS

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
        newest: datetime = bars["ts"][-1]
        by_time = bars.height - int(bars["ts"].search_sorted(newest - timedelta(minutes=self.bar_minutes)))
        return bars.tail(max(self.bars, by_time))

    def keep_articles(self, articles: pl.DataFrame, close: datetime) -> pl.DataFrame:
        """The articles received in ``(close - article_minutes, close]``."""
        since = close - timedelta(minutes=self.article_minutes)
        return articles.filter((pl.col("received_at") > since) & (pl.col("received_at") <= close))


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
        self.market = [
            (
                rows,
                staged_plan(
                    [s.expr.cast(s.dtype) for s in group if s.expr is not None], [s.name for s in group]
                ),
            )
            for rows, group in _market_buckets(market_specs(Catalog(s for s in specs if s.expr is not None)))
        ]
        self.news = [s.name for s in specs if s.group == NEWS_GROUP]
        by_name = {
            lag_name(context.horizon_minutes, k, context.horizon_bars): k
            for k in range(1, context.horizon_lags + 1)
        }
        self.lag_orders = [by_name[s.name] for s in specs if s.group == LAGS_GROUP]
        self.need = history_need(catalog, self.names)

    def row(self, bars: pl.DataFrame, articles: pl.DataFrame) -> pl.DataFrame:
        # Few DataFrame queries on purpose: each costs a fixed ~0.1 ms, more than the arithmetic here.
        window = self.need.keep_bars(_window(bars))
        ts = window["ts"].tail(1).cast(UTC_TS)
        columns: dict[str, pl.Series] = {}
        if self.market:
            full = with_bar_columns(window)
            for frame in evaluate([(plan, full.tail(rows)) for rows, plan in self.market]):
                columns.update((c.name, c) for c in frame.get_columns())
        if self.news:
            missing = [c for c in ARTICLE_COLUMNS if c not in articles.columns]
            if missing:
                raise SchemaError(f"online row: the articles lack columns {missing}; got {articles.columns}")
            key = pl.DataFrame({"instrument": [""], "granularity": [""], "ts": ts})
            signals = news_signals(key, articles, self.context)
            columns.update((n, signals[n]) for n in self.news)
        if self.lag_orders:
            lags = horizon_lags(
                lag_inputs(window, self.context, self.lag_orders), self.context, self.lag_orders
            )
            columns.update((c.name, c.tail(1)) for c in lags.get_columns())
        out = [ts.alias("ts")]
        for name in self.names:
            column, dtype = columns[name], self.catalog.get(name).dtype
            out.append(column if column.dtype == dtype else column.cast(dtype))
        return pl.DataFrame(out)


# Market features with a lookback up to this many bars are evaluated together on that many trailing bars;
# the rest on the longest lookback. Two queries measured faster than one (fewer rows for most features)
# and than finer groups (each query has a fixed cost, and shared subexpressions are computed per query).
SHORT_LOOKBACK = 128


def _market_buckets(specs: Sequence[FeatureSpec]) -> list[tuple[int, list[FeatureSpec]]]:
    """Market specs split into short and long lookbacks, each with the trailing rows it needs."""
    groups = [
        [s for s in specs if s.lookback <= SHORT_LOOKBACK],
        [s for s in specs if s.lookback > SHORT_LOOKBACK],
    ]
    return [(max(s.lookback for s in group), group) for group in groups if group]


def _window(bars: pl.DataFrame) -> pl.DataFrame:
    """Check the trailing bars: one series, bar columns, unique ts; sorted by ts."""
    if bars.is_empty():
        raise DataQualityError("online row: the window holds no bars")
    for column in SERIES_KEY:
        if column in bars.columns and bars[column].n_unique() > 1:
            raise DataQualityError(f"online row: the window mixes several {column} values; pass one series")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns and c not in ("bid_close", "ask_close")]
    if missing:
        raise SchemaError(f"online row: the bars lack columns {missing}; got {bars.columns}")
    if not bars["ts"].is_sorted():
        bars = bars.sort("ts")
    if bars["ts"].n_unique() != bars.height:
        raise DataQualityError("online row: several bars share a ts; the window must hold unique bars")
    return bars


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
        (about half a second) and cached per catalog OBJECT: build the catalog once and reuse it.
    context : bar size, horizon, lags and label tolerance the catalog was built with.
    names : the model's feature names in its column order (default: every catalog feature).

    Returns
    -------
    One row: ``ts`` and each feature in its catalog dtype, equal to the bar's gold.features row.
    """
    key = tuple(names) if names is not None else None
    return _plan(catalog, context, key).row(bars, articles)
