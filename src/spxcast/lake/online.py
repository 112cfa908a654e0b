"""Reading the inputs of one online feature row from the lake: the trailing bars and scored articles.

The I/O half of the online path (the pure half is :func:`spxcast.features.online.online_row`): bronze
candles of one series up to a bar, trimmed to what the features need, and the articles scored by one
scorer that were received by that bar's close.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from spxcast.errors import DataQualityError
from spxcast.features.catalog import BAR_COLUMNS
from spxcast.features.online import ARTICLE_COLUMNS, HistoryNeed
from spxcast.lake.store import Lake
from spxcast.lake.tables import CANDLES, UTC_TS
from spxcast.timeutil import bar_length


def online_inputs(
    lake: Lake, instrument: str, granularity: str, at: datetime, need: HistoryNeed, scorer_id: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(bars, articles) for the online row of the bar of ``instrument``/``granularity`` starting at ``at``.

    Parameters
    ----------
    at : the bar's start (UTC); the bar must exist in bronze.candles.
    need : :func:`spxcast.features.online.history_need` of the model's features.
    scorer_id : the sentiment scorer whose scores (silver.news_scores) the news features read.

    Returns
    -------
    bars : the series' bars with ``ts <= at`` that ``need`` asks for, sorted by ts, ``at`` last.
    articles : received_at, score, confidence of the scored articles with ``received_at`` in
        ``(close - need.article_minutes, close]``, close = ``at`` + bar length (none, and no news table
        read, when ``need.article_minutes`` is 0).
    """
    from spxcast.sentiment.cache import scored_articles

    series = lake.series(CANDLES.name, instrument, granularity).filter(pl.col("ts") <= at)
    series = series.select(BAR_COLUMNS)
    # Both are tails of the same sorted series: the longer one is their union.
    by_count, by_time = pl.collect_all(
        [series.tail(need.bars), series.filter(pl.col("ts") >= at - timedelta(minutes=need.bar_minutes))]
    )
    window = by_count if by_count.height >= by_time.height else by_time
    if window.is_empty() or window["ts"][-1] != at:
        raise DataQualityError(
            f"bronze.candles has no {instrument} {granularity} bar starting at {at.isoformat()} "
            "(weekend, break or halt, or not ingested yet)"
        )
    close = at + bar_length(granularity)
    if need.article_minutes <= 0:  # no news feature asked for (market-only models): no news tables read
        return window, pl.DataFrame(
            schema={"received_at": UTC_TS, "score": pl.Float64, "confidence": pl.Float64}
        )
    articles = scored_articles(lake, scorer_id, (close - timedelta(minutes=need.article_minutes), close))
    return window, articles.select(ARTICLE_COLUMNS)
