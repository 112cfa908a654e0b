"""GDELT DOC 2.0 API (``mode=artlist``, ``format=json``): a backfill source.

GDELT answers at most 250 articles per call, newest first, so a window that comes back full may be
truncated: it is split in two halves and each half asked again, recursively, until every window comes
back with fewer than ``maxrecords`` articles (or is shorter than ``gdelt_min_window_s``, which is logged
and counted as ``truncated_windows``). GDELT's ``seendate`` is the time its crawler SAW the article, not
its publication time: it is kept as ``crawled_at``; ``received_at`` is left for the backfill rule
(``crawled_at + latency``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from spxcast.errors import SourceError
from spxcast.sources.news.base import PoliteClient
from spxcast.sources.news.records import RawArticle

log = logging.getLogger(__name__)

_GDELT_TIME = "%Y%m%d%H%M%S"


class GdeltSource:
    """Articles matching ``query`` from the GDELT DOC 2.0 API, window by window."""

    provider = "gdelt"

    def __init__(
        self,
        client: PoliteClient,
        *,
        base_url: str,
        query: str,
        max_records: int = 250,
        min_window: timedelta = timedelta(minutes=1),
    ) -> None:
        if not 1 <= max_records <= 250:
            raise SourceError(f"GDELT maxrecords must be within 1..250, got {max_records}")
        self.client = client
        self.base_url = base_url
        self.query = query
        self.max_records = max_records
        self.min_window = min_window
        self.windows = 0
        self.truncated_windows = 0

    def fetch(self, start: datetime | None, end: datetime | None) -> Iterator[RawArticle]:
        """Every article GDELT saw in ``[start, end)``; both bounds are required (UTC)."""
        if start is None or end is None or end <= start:
            raise SourceError(f"GDELT needs a range with start < end; got start={start} end={end}")
        yield from self._window(start, end)

    def commit(self) -> None:
        """A backfill keeps no state."""

    def _window(self, start: datetime, end: datetime) -> Iterator[RawArticle]:
        articles = self._call(start, end)
        self.windows += 1
        if len(articles) >= self.max_records:
            if end - start > self.min_window:
                middle = start + (end - start) / 2
                log.info("GDELT window %s..%s is full (%d); splitting", start, end, len(articles))
                yield from self._window(start, middle)
                yield from self._window(middle, end)
                return
            self.truncated_windows += 1
            log.warning(
                "GDELT window %s..%s is full and cannot be split further; it may be truncated", start, end
            )
        for item in articles:
            yield _record(item)

    def _call(self, start: datetime, end: datetime) -> list[dict[str, object]]:
        params = {
            "query": self.query,
            "mode": "artlist",
            "format": "json",
            "maxrecords": str(self.max_records),
            "sort": "datedesc",
            # GDELT's end bound is inclusive at second resolution; [start, end) asks up to end - 1 s.
            "startdatetime": start.strftime(_GDELT_TIME),
            "enddatetime": (end - timedelta(seconds=1)).strftime(_GDELT_TIME),
        }
        response = self.client.get(self.base_url, params=params)
        body = response.text.strip()
        if not body:
            return []
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as exc:
            raise SourceError(
                f"GDELT answered {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} with text, not JSON: "
                f"{body[:200]!r}"
            ) from exc
        if not isinstance(payload, dict):
            raise SourceError(f"GDELT answered with a JSON {type(payload).__name__}; expected an object")
        articles = payload.get("articles", [])
        if not isinstance(articles, list):
            raise SourceError(f"GDELT 'articles' is a {type(articles).__name__}; expected a list")
        return [a if isinstance(a, dict) else {"raw": a} for a in articles]


def _record(item: dict[str, object]) -> RawArticle:
    if set(item) == {"raw"}:
        return RawArticle(raw=item["raw"], provider="gdelt")
    return RawArticle(
        url=item.get("url"),
        title=item.get("title"),
        domain=item.get("domain"),
        language=item.get("language"),
        crawled_at=item.get("seendate"),
        provider="gdelt",
    )
