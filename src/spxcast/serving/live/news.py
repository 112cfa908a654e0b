"""Scored articles for the live loop, on their own cadence.

- :class:`StoredArticles`: the articles of a replayed range, read from the lake once (the loop's online row
  counts only those received by each bar's close, as gold does).
- :class:`PolledNews`: a background thread that, every ``live.news_poll_s``, ingests the configured news
  source (GDELT, RSS, files), scores what is new with the configured scorer and hands the newly scored
  articles to the loop. A failed poll is logged and retried next time; the loop never waits for news.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl

from spxcast.config import Settings
from spxcast.errors import SpxcastError
from spxcast.lake import Lake
from spxcast.lake.tables import NEWS, NEWS_SCORES

log = logging.getLogger(__name__)

_EMPTY: dict[str, pl.DataType] = {
    "received_at": pl.Datetime("us", "UTC"),
    "score": pl.Float64(),
    "confidence": pl.Float64(),
}


def _scored(lake: Lake, scorer: str, after: datetime, until: datetime) -> pl.DataFrame:
    from spxcast.sentiment.cache import scored_articles

    if not lake.exists(NEWS.name) or not lake.exists(NEWS_SCORES.name):
        return pl.DataFrame(schema=_EMPTY)
    return scored_articles(lake, scorer, (after, until)).select(list(_EMPTY))


class StoredArticles:
    """Scored articles received in ``(start, end]``, handed out once."""

    def __init__(self, lake: Lake, scorer: str, start: datetime, end: datetime) -> None:
        self._frame: pl.DataFrame | None = _scored(lake, scorer, start, end)

    def new_articles(self) -> pl.DataFrame:
        frame, self._frame = self._frame, None
        return pl.DataFrame(schema=_EMPTY) if frame is None else frame


class PolledNews:
    """Ingest + score the configured news source every ``poll_s`` seconds in a daemon thread."""

    def __init__(
        self,
        settings: Settings,
        lake: Lake,
        since: datetime,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from spxcast.sentiment import scorer_id

        self.settings = settings
        self.lake = lake
        self.clock = clock
        self.scorer = scorer_id(settings.sentiment)
        self._since = since
        self._fresh: list[pl.DataFrame] = [_scored(lake, self.scorer, since, clock())]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-news", daemon=True)
        self.errors = 0

    def start(self) -> PolledNews:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def new_articles(self) -> pl.DataFrame:
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return pl.concat(fresh) if fresh else pl.DataFrame(schema=_EMPTY)

    def poll(self) -> None:
        """One round: ingest, score, and queue the articles scored since the last round."""
        from spxcast.ingest.news import ingest_news
        from spxcast.sentiment import build_scorer
        from spxcast.sentiment.cache import score_news

        now = self.clock()
        ingest_news(self.settings, self.lake, clock=self.clock)
        score_news(self.lake, build_scorer(self.settings.sentiment), now)
        found = _scored(self.lake, self.scorer, self._since, now)
        with self._lock:
            self._fresh.append(found)
        if not found.is_empty():
            self._since = found["received_at"].max()  # type: ignore[assignment]

    def _run(self) -> None:
        while not self._stop.wait(self.settings.live.news_poll_s):
            try:
                self.poll()
            except (SpxcastError, OSError) as exc:
                self.errors += 1
                log.warning(
                    "live news poll failed (retrying in %ss): %s", self.settings.live.news_poll_s, exc
                )
