"""News ingestion: the configured source → relevance and dedup → ``bronze.news`` + ``bronze.quarantine``.

The accounting identity ``input = accepted + quarantined + irrelevant + duplicates`` is part of the
result. Articles and quarantined records are each one atomic lake commit; a live source's state (RSS
validators) advances only after both commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import ConfigError, DataQualityError
from spxcast.lake import Lake
from spxcast.lake.tables import NEWS, QUARANTINE, SYNTHETIC_EVENTS
from spxcast.sources.news import (
    FilesSource,
    GdeltSource,
    NewsSource,
    PoliteClient,
    RelevanceFilter,
    RssSource,
    SyntheticNewsSource,
    to_bronze,
)
from spxcast.timeutil import parse_utc

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def rss_state_file(settings: Settings) -> Path:
    """Where the RSS source keeps each feed's ETag / Last-Modified between runs."""
    return settings.home.resolve() / "state" / "rss_validators.json"


def news_range(settings: Settings) -> tuple[datetime, datetime]:
    """The backfill range: ``news.start``/``news.end``, by default the synthetic market's range."""
    synthetic = settings.market.synthetic
    start = parse_utc(settings.news.start or settings.market.start or synthetic.start)
    if settings.news.end or settings.market.end:
        end = parse_utc(settings.news.end or settings.market.end or "")
    else:
        end = parse_utc(synthetic.start) + timedelta(days=synthetic.days)
    if end <= start:
        raise ConfigError(
            f"news range is empty: start {start:%Y-%m-%d %H:%M} is not before end {end:%Y-%m-%d %H:%M}"
        )
    return start, end


def synthetic_events(lake: Lake, instrument: str) -> pl.DataFrame:
    """The synthetic market's events for ``instrument`` (empty when the market wrote none)."""
    if not lake.exists(SYNTHETIC_EVENTS.name):
        log.warning(
            "%s does not exist: synthetic news will have background articles only", SYNTHETIC_EVENTS.name
        )
        return pl.DataFrame(schema=SYNTHETIC_EVENTS.schema)
    return lake.scan(SYNTHETIC_EVENTS.name).filter(pl.col("instrument") == instrument).collect()


def build_source(settings: Settings, lake: Lake, clock: Clock = _utc_now) -> NewsSource:
    """The source ``settings.news.source`` names, configured from settings."""
    news = settings.news
    if news.source == "synthetic":
        return SyntheticNewsSource(
            synthetic_events(lake, settings.instrument),
            seed=settings.seed,
            articles_per_day=news.synthetic_articles_per_day,
            duplicate_rate=news.synthetic_duplicate_rate,
        )
    if news.source == "files":
        if not news.files_path:
            raise ConfigError("news source 'files' needs a file: pass --file PATH or set news.files_path")
        return FilesSource(Path(news.files_path), news.columns)
    client = PoliteClient(
        timeout_s=news.timeout_s,
        politeness_delay_s=news.politeness_delay_s,
        max_retries=news.max_retries,
        backoff_base_s=news.backoff_base_s,
        backoff_max_s=news.backoff_max_s,
    )
    if news.source == "gdelt":
        return GdeltSource(
            client,
            base_url=news.gdelt_base_url,
            query=news.query,
            max_records=news.gdelt_max_records,
            min_window=timedelta(seconds=news.gdelt_min_window_s),
        )
    return RssSource(client, news.feeds, rss_state_file(settings), clock)


def ingest_news(
    settings: Settings, lake: Lake, source: NewsSource | None = None, clock: Clock = _utc_now
) -> dict[str, Any]:
    """Fetch, clean and write one batch of news; returns counts and table versions.

    Parameters
    ----------
    settings : the effective settings (``news`` section and the default range).
    lake : where bronze lives.
    source : the source to read; default: the one ``settings.news.source`` names.
    clock : "now" in UTC: ``ingested_at`` and, for live sources, ``received_at``.
    """
    source = source or build_source(settings, lake, clock)
    start, end = news_range(settings)
    ingested_at = clock()
    known_ids, known_titles = _known(lake)
    batch = to_bronze(
        source.fetch(start, end),
        provider=source.provider,
        ingested_at=ingested_at,
        backfill_latency=timedelta(minutes=settings.news.backfill_latency_minutes),
        relevance=RelevanceFilter(settings.news.relevance_terms),
        title_window=timedelta(hours=settings.news.title_dedup_hours),
        known_article_ids=known_ids,
        known_titles=known_titles,
    )
    news_version = lake.write(NEWS.name, batch.accepted)
    if news_version is None:  # nothing accepted (an empty or header-only file): an empty, typed table
        news_version = lake.ensure(NEWS.name)
    quarantine_version = lake.write(QUARANTINE.name, batch.quarantined)
    source.commit()
    result: dict[str, Any] = {
        "source": source.provider,
        "input": batch.input_count,
        "accepted": batch.accepted.height,
        "quarantined": batch.quarantined.height,
        "irrelevant": batch.irrelevant,
        "duplicates": batch.duplicates,
        "versions": {NEWS.name: news_version, QUARANTINE.name: quarantine_version},
    }
    if not batch.accepted.is_empty():
        result["received_range"] = [
            batch.accepted["received_at"].min().isoformat(),  # type: ignore[union-attr]
            batch.accepted["received_at"].max().isoformat(),  # type: ignore[union-attr]
        ]
    for extra in ("windows", "truncated_windows", "not_modified", "feed_errors"):
        if hasattr(source, extra):
            result[extra] = getattr(source, extra)
    log.info("ingested news: %s", result)
    return result


def _known(lake: Lake) -> tuple[set[str], dict[str, list[datetime]]]:
    if not lake.exists(NEWS.name):
        return set(), {}
    frame = lake.scan(NEWS.name).select("article_id", "title_key", "received_at").collect()
    titles = frame.group_by("title_key").agg(pl.col("received_at"))
    return set(frame["article_id"].to_list()), dict(titles.iter_rows())


def validate_news(lake: Lake, max_quarantine_fraction: float = 1.0) -> dict[str, Any]:
    """Gate: ``bronze.news`` exists, has articles, and at most ``max_quarantine_fraction`` of the news
    records were quarantined; reports duplicates, repeated titles, time range and quarantine."""
    if not lake.exists(NEWS.name):
        raise DataQualityError(f"{NEWS.name} does not exist; run `spxcast ingest news` first")
    frame = lake.read(NEWS.name)
    if frame.is_empty():
        raise DataQualityError(f"{NEWS.name} has no articles; ingest news before scoring it")
    quarantined = 0
    if lake.exists(QUARANTINE.name):
        quarantined = (
            lake.scan(QUARANTINE.name).filter(pl.col("table") == NEWS.name).select(pl.len()).collect().item()
        )
    fraction = quarantined / (quarantined + frame.height)
    if fraction > max_quarantine_fraction:
        raise DataQualityError(
            f"{fraction:.1%} of news records were quarantined "
            f"({quarantined} of {quarantined + frame.height}); the limit is {max_quarantine_fraction:.1%}: "
            f"inspect bronze.quarantine (table = {NEWS.name})"
        )
    late = frame.filter(
        pl.col("published_at").is_not_null() & (pl.col("received_at") < pl.col("published_at"))
    )
    return {
        "articles": frame.height,
        "duplicate_article_ids": frame.height - frame["article_id"].n_unique(),
        "repeated_titles": frame.height - frame["title_key"].n_unique(),
        "received_before_published": late.height,
        "received_range": [frame["received_at"].min().isoformat(), frame["received_at"].max().isoformat()],  # type: ignore[union-attr]
        "providers": dict(frame.group_by("provider").len().iter_rows()),
        "quarantined": quarantined,
    }
