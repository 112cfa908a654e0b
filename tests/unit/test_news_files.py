"""Users' archives: CSV and JSONL with a column mapping; bad rows quarantined."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spxcast.errors import ConfigError, SourceError
from spxcast.sources.news import FilesSource, RelevanceFilter, to_bronze


def _bronze(source: FilesSource):
    return to_bronze(
        source.fetch(None, None),
        provider="files",
        ingested_at=datetime(2024, 7, 1, tzinfo=UTC),
        backfill_latency=timedelta(minutes=10),
        relevance=RelevanceFilter(["stocks", "fed"]),
    )


def test_csv_with_a_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "archive.csv"
    path.write_text(
        "link,headline,when\n"
        "https://a.com/1,Stocks rise on Fed hopes,2024-06-03T14:00:00Z\n"
        "https://a.com/2,Stocks without time,\n"
        ",Stocks without link,2024-06-03T15:00:00Z\n"
    )
    source = FilesSource(path, {"url": "link", "title": "headline", "published_at": "when"})
    batch = _bronze(source)
    assert batch.accepted.height == 1
    assert batch.quarantined.height == 2
    assert batch.accepted["received_at"].item() == datetime(2024, 6, 3, 14, 10, tzinfo=UTC)


def test_jsonl_with_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "archive.jsonl"
    rows = [
        {"url": "https://b.com/1", "title": "Fed holds", "received_at": "2024-06-03T14:00:00Z"},
        {"url": "https://b.com/2", "title": "Stocks slip", "published_at": "Mon, 03 Jun 2024 15:00:00 GMT"},
    ]
    path.write_text("\n".join([json.dumps(rows[0]), "{not json", json.dumps(rows[1]), ""]))
    batch = _bronze(FilesSource(path))
    assert batch.accepted.height == 2
    assert batch.quarantined.height == 1
    assert "not json" in batch.quarantined["raw"].item()


def test_bad_configuration_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        FilesSource(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("url,title\n")
    with pytest.raises(ConfigError, match="unknown fields"):
        FilesSource(tmp_path / "x.csv", {"headline": "title"})
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(SourceError, match=r"must be \.csv or \.jsonl"):
        list(FilesSource(tmp_path / "x.xlsx").fetch(None, None))
