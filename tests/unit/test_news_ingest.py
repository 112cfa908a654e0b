"""Choosing and configuring the news source, and the default backfill range."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spxcast.config import Settings
from spxcast.errors import ConfigError, SourceError
from spxcast.ingest.news import build_source, news_range
from spxcast.lake import Lake
from spxcast.sources.news import FilesSource, GdeltSource, RssSource, SyntheticNewsSource


def _with(settings: Settings, **news: object) -> Settings:
    return settings.model_copy(update={"news": settings.news.model_copy(update=news)})


def test_each_source_is_built_from_settings(settings: Settings, tmp_path: Path) -> None:
    lake = Lake.from_settings(settings)
    assert isinstance(build_source(settings, lake), SyntheticNewsSource)  # no events table: background only
    gdelt = build_source(_with(settings, source="gdelt", gdelt_max_records=100), lake)
    assert isinstance(gdelt, GdeltSource)
    assert gdelt.max_records == 100
    assert isinstance(
        build_source(_with(settings, source="rss", feeds=["http://127.0.0.1:9/f"]), lake), RssSource
    )
    archive = tmp_path / "a.csv"
    archive.write_text("url,title\n")
    assert isinstance(
        build_source(_with(settings, source="files", files_path=str(archive)), lake), FilesSource
    )


def test_missing_configuration_is_named(settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    with pytest.raises(ConfigError, match="needs a file"):
        build_source(_with(settings, source="files"), lake)
    with pytest.raises(SourceError, match="no RSS feeds configured"):
        build_source(_with(settings, source="rss"), lake)


def test_default_range_is_the_synthetic_markets_and_can_be_overridden(settings: Settings) -> None:
    start, end = news_range(settings)
    assert start == datetime(2024, 1, 1, tzinfo=UTC)
    assert (end - start).days == settings.market.synthetic.days
    assert news_range(_with(settings, start="2024-03-01", end="2024-03-02T12:00Z")) == (
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 2, 12, tzinfo=UTC),
    )
    with pytest.raises(ConfigError, match="range is empty"):
        news_range(_with(settings, start="2024-03-02", end="2024-03-01"))
