"""Scoring with a cache: ``silver.news_scores`` holds one row per (text hash, scorer id).

Only texts whose hash has no row for the scorer are scored, so re-running scores nothing; a different
scorer (or a new version of one: its id changes) scores everything again under its own id.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from spxcast.lake import Lake
from spxcast.lake.tables import NEWS, NEWS_SCORES
from spxcast.sentiment.base import PROBABILITY_COLUMNS, SentimentScorer
from spxcast.sources.news.records import article_text

log = logging.getLogger(__name__)


def scores_frame(
    text_hashes: list[str], probabilities: np.ndarray, scorer_id: str, scored_at: datetime
) -> pl.DataFrame:
    """Rows of ``silver.news_scores``: score = p_pos − p_neg in [−1, 1]; confidence = max probability."""
    probs = probabilities.astype(np.float32)
    frame = pl.DataFrame(
        {"text_hash": text_hashes, **{c: probs[:, i] for i, c in enumerate(PROBABILITY_COLUMNS)}}
    )
    return frame.with_columns(
        pl.lit(scorer_id).alias("scorer_id"),
        (pl.col("p_pos") - pl.col("p_neg")).alias("score"),
        pl.max_horizontal(*PROBABILITY_COLUMNS).alias("confidence"),
        pl.lit(scored_at).cast(NEWS_SCORES.schema["scored_at"]).alias("scored_at"),
    ).select(list(NEWS_SCORES.schema))


def unscored_texts(lake: Lake, scorer_id: str) -> pl.DataFrame:
    """Distinct (text_hash, text) of bronze.news without a score by ``scorer_id``."""
    articles = lake.scan(NEWS.name).select("text_hash", "title", "summary").unique("text_hash").collect()
    if lake.exists(NEWS_SCORES.name):
        done = (
            lake.scan(NEWS_SCORES.name).filter(pl.col("scorer_id") == scorer_id).select("text_hash").collect()
        )
        articles = articles.join(done, on="text_hash", how="anti")
    texts = [article_text(t, s) for t, s in articles.select("title", "summary").iter_rows()]
    return articles.select("text_hash").with_columns(pl.Series("text", texts, dtype=pl.Utf8))


def score_news(lake: Lake, scorer: SentimentScorer, scored_at: datetime) -> dict[str, Any]:
    """Score every article text not yet scored by ``scorer``; one atomic write of the new rows."""
    todo = unscored_texts(lake, scorer.scorer_id)
    if todo.is_empty():
        return {"scorer_id": scorer.scorer_id, "scored": 0, "version": lake.version(NEWS_SCORES.name)}
    probabilities = scorer.score(todo["text"].to_list())
    version = lake.write(
        NEWS_SCORES.name,
        scores_frame(todo["text_hash"].to_list(), probabilities, scorer.scorer_id, scored_at),
    )
    log.info("scored %d texts with %s", todo.height, scorer.scorer_id)
    return {"scorer_id": scorer.scorer_id, "scored": todo.height, "version": version}


def scored_articles(
    lake: Lake, scorer_id: str, received: tuple[datetime, datetime] | None = None
) -> pl.DataFrame:
    """Articles with their scores by ``scorer_id``: article_id, received_at, score, confidence.

    Articles without a score by that scorer are left out (score them first). ``received = (after, until)``
    keeps only articles with ``after < received_at <= until`` (UTC).
    """
    articles = lake.scan(NEWS.name).select("article_id", "received_at", "text_hash")
    if received is not None:
        after, until = received
        articles = articles.filter((pl.col("received_at") > after) & (pl.col("received_at") <= until))
    scores = (
        lake.scan(NEWS_SCORES.name)
        .filter(pl.col("scorer_id") == scorer_id)
        .select("text_hash", "score", "confidence")
    )
    return (
        articles.join(scores, on="text_hash", how="inner")
        .select("article_id", "received_at", "score", "confidence")
        .collect()
    )
