"""News tasks: ingest → validate → score (silver.news_scores) → point-in-time signals (gold.news_signals).

Market-only is a first-class mode: when there is no news to use (``bronze.news`` absent or empty, the news
source ``none``, or ``features.use_news`` false) each news task says so in its output and does nothing,
and :func:`spxcast.pipeline.tasks.features.gold_labels` builds gold from the market features alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import DataQualityError
from spxcast.features.catalog import feature_context
from spxcast.ingest import news as news_ingest
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES, NEWS
from spxcast.pipeline.context import TaskContext
from spxcast.sentiment import build_scorer, scorer_id
from spxcast.sentiment.cache import score_news, scored_articles

log = logging.getLogger(__name__)

MARKET_ONLY = "market_only"
NEWS_SIGNALS = "gold.news_signals"


def news_absence(settings: Settings, lake: Lake) -> str | None:
    """Why this run has no news to use (``None`` when it has): the reason a market-only run states."""
    if not settings.features.use_news:
        return "news features are turned off (features.use_news = false / --no-news)"
    if not lake.exists(NEWS.name):
        return f"{NEWS.name} does not exist (no news ingested)"
    if lake.scan(NEWS.name).select(pl.len()).collect().item() == 0:
        return f"{NEWS.name} holds no articles"
    return None


def signals_absence(settings: Settings, lake: Lake) -> str | None:
    """Why gold.features gets no news signals (``None`` when gold.news_signals has rows to join)."""
    if not settings.features.use_news:
        return "news features are turned off (features.use_news = false / --no-news)"
    if not lake.exists(NEWS_SIGNALS):
        return f"{NEWS_SIGNALS} does not exist (no news ingested)"
    rows = (
        lake.scan(NEWS_SIGNALS)
        .filter(pl.col("granularity") == settings.granularity)
        .select(pl.len())
        .collect()
        .item()
    )
    return None if rows else f"{NEWS_SIGNALS} has no {settings.granularity} rows (no news ingested)"


def _skipped(reason: str) -> dict[str, Any]:
    return {MARKET_ONLY: True, "skipped": f"market-only: {reason}"}


def ingest_news(ctx: TaskContext) -> dict[str, Any]:
    """The configured news source → bronze.news (+ bronze.quarantine); nothing with source ``none``."""
    if ctx.settings.news.source == "none":
        return _skipped("news source is 'none'")
    return news_ingest.ingest_news(ctx.settings, ctx.lake)


def validate_news(ctx: TaskContext) -> dict[str, Any]:
    """Gate: bronze.news usable; reports duplicates, time range and quarantine (market-only: a note)."""
    reason = news_absence(ctx.settings, ctx.lake)
    if reason is not None:
        return _skipped(reason)
    return news_ingest.validate_news(ctx.lake, ctx.settings.quality.max_quarantine_fraction)


def silver_news_sentiment(ctx: TaskContext) -> dict[str, Any]:
    """Score every article text the configured scorer has not scored yet → silver.news_scores."""
    reason = news_absence(ctx.settings, ctx.lake)
    if reason is not None:
        return _skipped(reason)
    return score_news(ctx.lake, build_scorer(ctx.settings.sentiment), datetime.now(UTC))


def gold_news_signals(ctx: TaskContext) -> dict[str, Any]:
    """Bars of settings.instrument/granularity + scored articles → gold.news_signals (overwritten)."""
    settings, lake = ctx.settings, ctx.lake
    reason = news_absence(settings, lake)
    if reason is not None:
        if lake.exists(NEWS_SIGNALS):  # no stale signals of earlier news for gold to join
            lake.write(NEWS_SIGNALS, pl.DataFrame(schema=lake.scan(NEWS_SIGNALS).collect_schema()))
        return _skipped(reason)
    bars = (
        lake.series(CANDLES.name, settings.instrument, settings.granularity)
        .select("instrument", "granularity", "ts")
        .collect()
    )
    if bars.is_empty():
        raise DataQualityError(
            f"bronze.candles has no {settings.instrument} {settings.granularity} bars; "
            "ingest market data first"
        )
    from spxcast.features.news import news_signals

    scorer = scorer_id(settings.sentiment)
    articles = scored_articles(lake, scorer)
    signals = news_signals(bars, articles, feature_context(settings))
    version = lake.write(NEWS_SIGNALS, signals)
    return {
        "version": version,
        "bars": signals.height,
        "articles": articles.height,
        "scorer_id": scorer,
        "bars_with_news_60m": int((signals["news_count_60m"] > 0).sum()),
    }
