"""News tasks: ingest → validate → score (silver.news_scores) → point-in-time signals (gold.news_signals)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spxcast.errors import DataQualityError
from spxcast.features.catalog import feature_context
from spxcast.features.news import news_signals
from spxcast.ingest import news as news_ingest
from spxcast.lake.tables import CANDLES
from spxcast.pipeline.context import TaskContext
from spxcast.sentiment import build_scorer, scorer_id
from spxcast.sentiment.cache import score_news, scored_articles


def ingest_news(ctx: TaskContext) -> dict[str, Any]:
    """The configured news source → bronze.news (+ bronze.quarantine)."""
    return news_ingest.ingest_news(ctx.settings, ctx.lake)


def validate_news(ctx: TaskContext) -> dict[str, Any]:
    """Gate: bronze.news exists and has articles; reports duplicates, time range and quarantine."""
    return news_ingest.validate_news(ctx.lake, ctx.settings.quality.max_quarantine_fraction)


def silver_news_sentiment(ctx: TaskContext) -> dict[str, Any]:
    """Score every article text the configured scorer has not scored yet → silver.news_scores."""
    return score_news(ctx.lake, build_scorer(ctx.settings.sentiment), datetime.now(UTC))


def gold_news_signals(ctx: TaskContext) -> dict[str, Any]:
    """Bars of settings.instrument/granularity + scored articles → gold.news_signals (overwritten)."""
    settings, lake = ctx.settings, ctx.lake
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
    scorer = scorer_id(settings.sentiment)
    articles = scored_articles(lake, scorer)
    signals = news_signals(bars, articles, feature_context(settings))
    version = lake.write("gold.news_signals", signals)
    return {
        "version": version,
        "bars": signals.height,
        "articles": articles.height,
        "scorer_id": scorer,
        "bars_with_news_60m": int((signals["news_count_60m"] > 0).sum()),
    }
