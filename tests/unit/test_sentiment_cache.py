"""Scores are cached per (text hash, scorer id): a second run scores nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.sentiment.cache import score_news, scored_articles
from spxcast.sentiment.lexicon import LexiconScorer
from spxcast.sentiment.recent import recent_articles
from spxcast.sources.news import RawArticle, RelevanceFilter, to_bronze

NOW = datetime(2024, 4, 2, 15, 0, tzinfo=UTC)


class CountingScorer:
    """The real lexicon scorer, counting the texts it is asked to score."""

    def __init__(self, scorer_id: str | None = None) -> None:
        self.inner = LexiconScorer()
        self.scorer_id = scorer_id or self.inner.scorer_id
        self.seen: list[str] = []

    def score(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.score(texts)


def _write(lake: Lake, titles: list[str], minute0: int = 0) -> None:
    records = [
        RawArticle(
            url=f"https://n.com/{minute0 + i}", title=t, received_at=NOW + timedelta(minutes=minute0 + i)
        )
        for i, t in enumerate(titles)
    ]
    batch = to_bronze(
        records, provider="t", ingested_at=NOW, backfill_latency=timedelta(0), relevance=RelevanceFilter([])
    )
    lake.write("bronze.news", batch.accepted)


def test_nothing_is_scored_twice(settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    _write(lake, ["Stocks surge", "Stocks plunge", "Wall Street waits"])
    scorer = CountingScorer()
    first = score_news(lake, scorer, NOW)
    assert first["scored"] == 3
    assert len(scorer.seen) == 3
    second = score_news(lake, scorer, NOW)
    assert second["scored"] == 0
    assert len(scorer.seen) == 3
    assert second["version"] == first["version"]  # nothing written

    _write(lake, ["Stocks surge", "Dow rallies"], minute0=1440)  # same text next day + a new one
    third = score_news(lake, scorer, NOW)
    assert third["scored"] == 1
    assert scorer.seen[-1] == "Dow rallies"

    other = CountingScorer("another-scorer:v1")
    assert score_news(lake, other, NOW)["scored"] == 4
    scores = lake.read("silver.news_scores")
    assert scores.height == 8
    assert scores.select("text_hash", "scorer_id").n_unique() == 8
    np.testing.assert_allclose(scores["score"], scores["p_pos"] - scores["p_neg"], atol=1e-6)


def test_scored_articles_and_recent(settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    _write(lake, ["Stocks surge", "Stocks plunge", "Stocks surge again"])
    scorer = LexiconScorer()
    score_news(lake, scorer, NOW)
    joined = scored_articles(lake, scorer.scorer_id).sort("received_at")
    assert joined.columns == ["article_id", "received_at", "score", "confidence"]
    assert joined["score"][0] > 0 > joined["score"][1]
    recent = recent_articles(lake, scorer.scorer_id, 2)
    assert recent["title"].to_list() == ["Stocks surge again", "Stocks plunge"]
    assert recent_articles(lake, "unknown-scorer", 5)["score"].null_count() == 3
