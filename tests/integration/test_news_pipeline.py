"""The news tasks and verbs end to end on a lake in tmp: synthetic news → scores → gold.news_signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from spxcast.cli.main import app
from spxcast.config import Settings
from spxcast.errors import DataQualityError
from spxcast.features.news import decay_name
from spxcast.ingest.news import validate_news
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES, SYNTHETIC_EVENTS
from spxcast.pipeline.context import TaskContext
from spxcast.pipeline.tasks import news as tasks
from tiny_bert import tiny_model

START = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday


def _settings(settings: Settings) -> Settings:
    news = settings.news.model_copy(update={"start": "2024-01-02", "end": "2024-01-04"})
    return settings.model_copy(update={"news": news})


def _seed_lake(lake: Lake) -> pl.DataFrame:
    ts = [START + timedelta(minutes=i) for i in range(2 * 1440)]
    n = len(ts)
    candles = pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "granularity": "M1",
            "ts": ts,
            "open": 4700.0,
            "high": 4701.0,
            "low": 4699.0,
            "close": 4700.5,
            "volume": 10,
            "bid_close": 4700.4,
            "ask_close": 4700.6,
            "source": "test",
            "ingested_at": START,
        },
        schema=CANDLES.schema,
    )
    assert candles.height == n
    lake.write(CANDLES.name, candles)
    rng = np.random.default_rng(3)
    events = pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "event_id": [f"e{i}" for i in range(16)],
            "received_at": [START + timedelta(hours=3 * i, minutes=7) for i in range(16)],
            "direction": rng.choice([-1, 1], 16),
            "magnitude": rng.uniform(0.4, 1.0, 16),
            "kind": "macro",
        },
        schema=SYNTHETIC_EVENTS.schema,
    )
    lake.write(SYNTHETIC_EVENTS.name, events)
    return events


def test_tasks_from_synthetic_news_to_gold(settings: Settings) -> None:
    config = _settings(settings)
    ctx = TaskContext(config, "run-1", "news")
    # No news yet: market-only, said in the output, not a failure (issue 9: market-only is first class).
    assert tasks.validate_news(ctx)["skipped"] == "market-only: bronze.news does not exist (no news ingested)"
    events = _seed_lake(ctx.lake)

    ingested = tasks.ingest_news(ctx)
    total = ingested["accepted"] + ingested["quarantined"] + ingested["irrelevant"] + ingested["duplicates"]
    assert ingested["input"] == total
    assert ingested["accepted"] > 50
    assert ingested["duplicates"] > 0
    assert tasks.ingest_news(ctx)["accepted"] == 0  # idempotent: a rerun adds nothing

    report = tasks.validate_news(ctx)
    assert report["articles"] == ingested["accepted"]
    assert report["duplicate_article_ids"] == 0
    assert report["received_before_published"] == 0
    json.dumps(report)

    scored = tasks.silver_news_sentiment(ctx)
    assert scored["scored"] > 0
    assert tasks.silver_news_sentiment(ctx)["scored"] == 0

    gold = tasks.gold_news_signals(ctx)
    assert gold["bars"] == 2 * 1440
    signals = ctx.lake.read("gold.news_signals").sort("ts")
    # Ten minutes after each event the 30-minute decayed sentiment has the event's sign.
    after = signals.join(
        events.select((pl.col("received_at") + timedelta(minutes=9)).alias("ts"), "direction"), on="ts"
    )
    assert (np.sign(after[decay_name(30)].to_numpy()) == after["direction"].to_numpy()).mean() >= 0.9


def test_cli_ingest_score_and_recent(settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "archive.csv"
    archive.write_text(
        "link,headline,when\n"
        "https://a.com/1,Stocks surge on strong earnings,2024-06-03T14:00:00Z\n"
        "https://a.com/2,Stocks plunge as recession fears grow,2024-06-03T15:00:00Z\n"
        "https://a.com/3,,2024-06-03T15:00:00Z\n"
    )
    home = ["--home", str(settings.home)]
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            *home,
            "ingest",
            "news",
            "--source",
            "files",
            "--file",
            str(archive),
            "--map",
            "url=link",
            "--map",
            "title=headline",
            "--map",
            "published_at=when",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 accepted" in result.output
    assert "1 quarantined" in result.output
    lake = Lake.from_settings(settings)
    with pytest.raises(DataQualityError, match=r"33\.3% of news records were quarantined"):
        validate_news(lake, max_quarantine_fraction=0.05)
    assert validate_news(lake, max_quarantine_fraction=0.5)["quarantined"] == 1
    result = runner.invoke(app, [*home, "news", "score", "--scorer", "lexicon"])
    assert result.exit_code == 0, result.output
    assert "scored 2 new texts" in result.output
    result = runner.invoke(app, [*home, "news", "recent", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "Stocks plunge" in result.output
    model = tiny_model(tmp_path / "tiny-finbert", ["stocks surge on strong earnings", "stocks plunge"])
    result = runner.invoke(app, [*home, "news", "score", "--scorer", "finbert", "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "scored 2 new texts with transformers:tiny-finbert@" in result.output
    scores = lake.read("silver.news_scores")
    assert scores["scorer_id"].n_unique() == 2
    assert scores.height == 4
    bad = runner.invoke(app, [*home, "ingest", "news", "--source", "files", "--map", "title"])
    assert bad.exit_code == 2
    assert "--map expects" in bad.output
    missing = runner.invoke(
        app, [*home, "news", "score", "--scorer", "finbert", "--model", str(tmp_path / "none")]
    )
    assert missing.exit_code == 1
    assert "never downloads" in missing.output
