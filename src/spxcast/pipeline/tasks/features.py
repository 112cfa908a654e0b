"""Feature tasks: bronze.candles -> silver market groups -> gold.market_features -> gold.features.

Each task reads lake tables, calls the pure builders of :mod:`spxcast.features.build` and
:mod:`spxcast.features.labels`, writes one table atomically and returns its version and row count. The
series built are those of ``settings.granularity`` (feature names depend on the bar size through the
horizon); every instrument of that granularity is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import DataQualityError
from spxcast.features.build import gold_features_frame, gold_market_frame, silver_frame
from spxcast.features.catalog import (
    BAR_COLUMNS,
    NEWS_GROUP,
    SILVER_FAMILIES,
    Catalog,
    feature_catalog,
    feature_context,
    market_catalog,
)
from spxcast.features.labels import label_schema, make_labels
from spxcast.features.lags import horizon_lags
from spxcast.lake import Lake
from spxcast.lake.tables import BAR_KEY, GOLD_FEATURES
from spxcast.pipeline.context import TaskContext

log = logging.getLogger(__name__)

CANDLES = "bronze.candles"
GOLD_MARKET = "gold.market_features"
NEWS_SIGNALS = "gold.news_signals"
GOLD = GOLD_FEATURES.name


def _candles(settings: Settings, lake: Lake) -> pl.DataFrame:
    """The bars of ``settings.granularity`` (all instruments), bar key + bar columns."""
    columns = list(dict.fromkeys((*BAR_KEY, *BAR_COLUMNS)))
    frame = lake.scan(CANDLES).filter(pl.col("granularity") == settings.granularity).select(columns).collect()
    if frame.is_empty():
        raise DataQualityError(
            f"{CANDLES} has no {settings.granularity} bars; ingest market data first (spxcast ingest market)"
        )
    return frame


def _written(lake: Lake, name: str, frame: pl.DataFrame, **extra: Any) -> dict[str, Any]:
    return {"table": name, "version": lake.write(name, frame), "rows": frame.height, **extra}


def _silver(ctx: TaskContext, table: str) -> dict[str, Any]:
    lake = ctx.lake
    frame = silver_frame(_candles(ctx.settings, lake), market_catalog(feature_context(ctx.settings)), table)
    return _written(
        lake, table, frame, features=frame.width - len(BAR_KEY), families=list(SILVER_FAMILIES[table])
    )


def silver_returns(ctx: TaskContext) -> dict[str, Any]:
    """bronze.candles -> silver.returns (returns and calendar families)."""
    return _silver(ctx, "silver.returns")


def silver_technical(ctx: TaskContext) -> dict[str, Any]:
    """bronze.candles -> silver.technical."""
    return _silver(ctx, "silver.technical")


def silver_volatility(ctx: TaskContext) -> dict[str, Any]:
    """bronze.candles -> silver.volatility."""
    return _silver(ctx, "silver.volatility")


def silver_microstructure(ctx: TaskContext) -> dict[str, Any]:
    """bronze.candles -> silver.microstructure (microstructure and shape families)."""
    return _silver(ctx, "silver.microstructure")


def gold_market_features(ctx: TaskContext) -> dict[str, Any]:
    """The silver market groups joined on the bar key -> gold.market_features."""
    lake = ctx.lake
    frames = [lake.read(table) for table in SILVER_FAMILIES]
    gold = gold_market_frame(frames, market_catalog(feature_context(ctx.settings)))
    return _written(lake, GOLD_MARKET, gold, silver_versions=lake.versions(list(SILVER_FAMILIES)))


def build_gold_features(
    settings: Settings, lake: Lake, catalog: Catalog, news_absent: str | None = None
) -> pl.DataFrame:
    """gold.market_features LEFT JOIN gold.news_signals on the bar key, plus horizon lags and labels from
    bronze.candles.

    ``news_absent`` (why there is no news, see :func:`spxcast.pipeline.tasks.news.signals_absence`): the
    market-only mode; the news columns are then null on every bar and gold.news_signals is not read.
    """
    market = lake.read(GOLD_MARKET)
    news_specs = [s for s in catalog if s.group == NEWS_GROUP]
    if news_absent is not None or not news_specs:
        news = market.select(BAR_KEY).with_columns(
            pl.lit(None, dtype=s.dtype).alias(s.name) for s in news_specs
        )
    else:
        news = lake.scan(NEWS_SIGNALS).select(*BAR_KEY, *(s.name for s in news_specs)).collect()
    candles = _candles(settings, lake)
    labels = make_labels(
        candles,
        settings.horizon_minutes,
        settings.features.label_tolerance_minutes,
        settings.horizon_bars,
        settings.calendar,
    )
    lags = candles.select(BAR_KEY).hstack(horizon_lags(candles, feature_context(settings)).get_columns())
    schema = label_schema(settings.horizon_minutes, settings.horizon_bars)
    return gold_features_frame(market, news, labels, catalog, schema, lags)


def gold_labels(ctx: TaskContext) -> dict[str, Any]:
    """gold.market_features + gold.news_signals + labels -> gold.features (the training table).

    With no news to use, gold holds the market features and null news columns, and the output says so.
    """
    from spxcast.pipeline.tasks.news import MARKET_ONLY, signals_absence

    lake = ctx.lake
    absent = signals_absence(ctx.settings, lake)
    if absent is not None:
        log.warning("market-only: %s; gold.features gets market features only (news columns null)", absent)
    gold = build_gold_features(ctx.settings, lake, feature_catalog(ctx.settings), absent)
    inputs = [GOLD_MARKET, CANDLES] if absent is not None else [GOLD_MARKET, NEWS_SIGNALS, CANDLES]
    extra: dict[str, Any] = {MARKET_ONLY: True, "news": f"none: {absent}"} if absent is not None else {}
    return _written(
        lake,
        GOLD,
        gold,
        labelled=int(gold["label_ok"].sum()),
        inputs=lake.versions(inputs),
        **extra,
    )


def build_features(
    settings: Settings,
    run_id: str,
    on_step: Callable[[str, dict[str, Any] | None], None] | None = None,
    include_news: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run the ``features`` DAG of :mod:`spxcast.pipeline.spec` in this process, in its order.

    With ``include_news`` the news tasks (score unscored articles, then news signals as of each bar's
    close) run before ``gold_labels``; with no news in the lake they report market-only and gold holds the
    market features alone. Without ``include_news`` (``--no-news``) the news tasks are left out and gold is
    built without news features. ``on_step(task, None)`` is called before a task and
    ``on_step(task, result)`` after it.
    """
    from spxcast.pipeline.runner import resolve_callable
    from spxcast.pipeline.spec import NEWS_FEATURE_TASKS, get_dag

    with_news = include_news and settings.features.use_news
    if not with_news:
        settings = settings.model_copy(
            update={"features": settings.features.model_copy(update={"use_news": False})}
        )
    dag = get_dag("features")
    names = [n for n in dag.order() if with_news or n not in NEWS_FEATURE_TASKS]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        if on_step:
            on_step(name, None)
        task = resolve_callable(dag.task(name).callable)
        results[name] = dict(task(TaskContext(settings=settings, run_id=run_id, task=name)) or {})
        if on_step:
            on_step(name, results[name])
    return results
