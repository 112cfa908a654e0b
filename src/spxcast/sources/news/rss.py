"""RSS 2.0 / Atom feeds: a live source with conditional GET.

Each feed is fetched with httpx (``If-None-Match`` / ``If-Modified-Since`` from the state file) and the
body handed to feedparser. ``received_at`` is the time this run first saw the item (the injected clock);
items seen in earlier runs are dropped as duplicates downstream because bronze keeps the first copy of
every article. The new ``ETag`` / ``Last-Modified`` of each feed are written to the state file only by
:meth:`RssSource.commit`, after the articles are in the lake, so a crash cannot skip items.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from spxcast.errors import SourceError
from spxcast.sources.news.base import Clock, PoliteClient
from spxcast.sources.news.records import RawArticle

log = logging.getLogger(__name__)


class RssSource:
    """New items of a list of RSS/Atom feeds since the last committed run."""

    provider = "rss"

    def __init__(self, client: PoliteClient, feeds: Sequence[str], state_file: Path, clock: Clock) -> None:
        if not feeds:
            raise SourceError(
                "no RSS feeds configured; set news.feeds (SPXCAST_NEWS__FEEDS='[\"https://…\"]')"
            )
        self.client = client
        self.feeds = list(feeds)
        self.state_file = state_file
        self.clock = clock
        self.not_modified: list[str] = []
        self.feed_errors: dict[str, str] = {}
        self._pending: dict[str, dict[str, str]] = {}

    def fetch(self, start: datetime | None, end: datetime | None) -> Iterator[RawArticle]:
        """Items of every feed; a feed that fails is reported in ``feed_errors`` and the others go on."""
        state = self._load_state()
        for feed in self.feeds:
            try:
                yield from self._feed(feed, state.get(feed, {}))
            except SourceError as exc:
                log.error("RSS feed %s failed: %s", feed, exc)
                self.feed_errors[feed] = str(exc)

    def commit(self) -> None:
        """Store the validators of the feeds fetched by this run."""
        if not self._pending:
            return
        state = {**self._load_state(), **self._pending}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_file)
        self._pending = {}

    def _feed(self, feed: str, validators: dict[str, str]) -> Iterator[RawArticle]:
        import feedparser

        headers = {}
        if "etag" in validators:
            headers["If-None-Match"] = validators["etag"]
        if "last_modified" in validators:
            headers["If-Modified-Since"] = validators["last_modified"]
        seen_at = self.clock()
        response = self.client.get(feed, headers=headers)
        if response.status_code == 304:
            self.not_modified.append(feed)
            return
        parsed = feedparser.parse(response.content)
        if parsed.bozo and not parsed.entries:
            raise SourceError(f"feed {feed} is not readable RSS/Atom: {parsed.get('bozo_exception')}")
        fresh = {
            k: v
            for k, v in (
                ("etag", response.headers.get("ETag")),
                ("last_modified", response.headers.get("Last-Modified")),
            )
            if v
        }
        self._pending[feed] = fresh
        language = parsed.feed.get("language")
        for entry in parsed.entries:
            yield _record(entry, language, seen_at)

    def _load_state(self) -> dict[str, dict[str, str]]:
        if not self.state_file.is_file():
            return {}
        try:
            state = json.loads(self.state_file.read_text())
        except json.JSONDecodeError as exc:
            raise SourceError(
                f"RSS state file {self.state_file} is not JSON ({exc}); delete it to refetch"
            ) from exc
        return state if isinstance(state, dict) else {}


def _record(entry: Any, language: str | None, seen_at: datetime) -> RawArticle:
    link = entry.get("link") or next((x.get("href") for x in entry.get("links", []) if x.get("href")), None)
    return RawArticle(
        url=link,
        title=entry.get("title"),
        summary=entry.get("summary"),
        language=language,
        published_at=entry.get("published") or entry.get("updated"),
        received_at=seen_at,
        provider="rss",
    )
