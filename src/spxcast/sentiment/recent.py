"""The latest articles with their scores (for ``spxcast news recent`` and the API's /news/recent)."""

from __future__ import annotations

import polars as pl

from spxcast.errors import DataQualityError
from spxcast.lake import Lake
from spxcast.lake.tables import NEWS, NEWS_SCORES


def recent_articles(lake: Lake, scorer_id: str, limit: int) -> pl.DataFrame:
    """The ``limit`` most recently received articles: received_at, title, domain, score, confidence.

    score/confidence are null for articles the scorer has not scored yet.
    """
    if not lake.exists(NEWS.name):
        raise DataQualityError(f"{NEWS.name} does not exist; run `spxcast ingest news` first")
    latest = lake.scan(NEWS.name).sort("received_at", descending=True).head(limit)
    columns = ["received_at", "title", "domain", "score", "confidence"]
    if not lake.exists(NEWS_SCORES.name):
        return (
            latest.with_columns(score=pl.lit(None, pl.Float32), confidence=pl.lit(None, pl.Float32))
            .select(columns)
            .collect()
        )
    scores = (
        lake.scan(NEWS_SCORES.name)
        .filter(pl.col("scorer_id") == scorer_id)
        .select("text_hash", "score", "confidence")
    )
    return (
        latest.join(scores, on="text_hash", how="left")
        .sort("received_at", descending=True)
        .select(columns)
        .collect()
    )
