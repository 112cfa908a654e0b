"""Synthetic news: event headlines on the event's side, background mostly neutral, realistic duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from spxcast.config import NewsSettings
from spxcast.lake.tables import SYNTHETIC_EVENTS
from spxcast.sentiment.lexicon import LexiconScorer
from spxcast.sources.news import RelevanceFilter, SyntheticNewsSource, to_bronze

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
END = START + timedelta(days=14)


def _events(n: int = 60, seed: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    received = [START + timedelta(minutes=int(m)) for m in np.sort(rng.uniform(0, 14 * 1440, n))]
    return pl.DataFrame(
        {
            "instrument": "SPX500_USD",
            "event_id": [f"e{i}" for i in range(n)],
            "received_at": received,
            "direction": rng.choice([-1, 1], n),
            "magnitude": rng.uniform(0, 1, n),
            "kind": rng.choice(["macro", "earnings", "fed", "other"], n),
        },
        schema=SYNTHETIC_EVENTS.schema,
    )


@pytest.fixture(scope="module")
def generated() -> tuple[pl.DataFrame, list[dict[str, object]]]:
    events = _events()
    records = list(SyntheticNewsSource(events, seed=7, articles_per_day=40).fetch(START, END))
    return events, records  # type: ignore[return-value]


def _bronze(records: list[dict[str, object]]):
    return to_bronze(
        records,  # type: ignore[arg-type]
        provider="synthetic",
        ingested_at=END,
        backfill_latency=timedelta(minutes=5),
        relevance=RelevanceFilter(NewsSettings().relevance_terms),
    )


def test_event_articles_survive_and_score_on_the_event_side(generated) -> None:
    events, records = generated
    batch = _bronze(records)
    scorer = LexiconScorer()
    at_event = batch.accepted.join(events, on="received_at", how="inner")
    assert at_event.height == events.height  # every event has its article, received exactly at the event
    probs = scorer.score(at_event["title"].to_list())
    score = probs[:, 0] - probs[:, 1]
    assert (np.sign(score) == at_event["direction"].to_numpy()).all()
    tiers = np.minimum(2, (at_event["magnitude"].to_numpy() * 3).astype(int))
    means = [np.abs(score[tiers == t]).mean() for t in range(3)]
    assert means[0] < means[1] < means[2]
    assert (at_event["published_at"] <= at_event["received_at"]).all()


def test_background_is_mostly_neutral_or_mixed(generated) -> None:
    events, records = generated
    batch = _bronze(records)
    background = batch.accepted.join(events, on="received_at", how="anti")
    probs = LexiconScorer().score(background["title"].to_list())
    assert background.height > 300
    assert np.mean(np.abs(probs[:, 0] - probs[:, 1]) < 0.05) > 0.9


def test_duplicates_near_duplicates_and_off_topic_items_are_generated_and_removed(generated) -> None:
    _, records = generated
    batch = _bronze(records)
    assert batch.duplicates > 0.15 * len(records)
    assert batch.irrelevant > 0
    urls = [str(r["url"]) for r in records]
    assert any("utm_source" in u for u in urls)
    assert any(u.startswith("http://") for u in urls)
    assert any(
        str(r["title"]).endswith(("- Reuters", "- CNBC", "- Bloomberg", "- AP", "- WSJ")) for r in records
    )
    # Dedup keeps the earliest copy: no accepted title repeats within the dedup window.
    accepted = batch.accepted.sort("received_at")
    gaps = accepted.group_by("title_key").agg(pl.col("received_at").diff().min().alias("gap")).drop_nulls()
    assert (gaps["gap"] >= timedelta(hours=6)).all()


def test_arrivals_follow_the_intraday_and_weekly_seasonality(generated) -> None:
    _, records = generated
    frame = pl.DataFrame({"t": [r["published_at"] for r in records]})
    hours = frame.with_columns(pl.col("t").dt.hour().alias("h"), pl.col("t").dt.weekday().alias("d"))
    weekday = hours.filter(pl.col("d") <= 5)
    session = weekday.filter(pl.col("h").is_between(13, 19)).height / 7
    night = weekday.filter(pl.col("h") < 6).height / 6
    assert session > 3 * night
    assert hours.filter(pl.col("d") > 5).height < 0.15 * hours.height


def test_generation_is_deterministic_and_bounded_to_the_range() -> None:
    events = _events(10)
    a = list(SyntheticNewsSource(events, seed=1).fetch(START, START + timedelta(days=2)))
    b = list(SyntheticNewsSource(events, seed=1).fetch(START, START + timedelta(days=2)))
    assert a == b
    assert all(START <= r["published_at"] < START + timedelta(days=2) for r in a)  # type: ignore[operator]
    assert a != list(SyntheticNewsSource(events, seed=2).fetch(START, START + timedelta(days=2)))
