"""The interface every news source implements, and the polite, retrying HTTP fetch they share."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from spxcast.errors import SourceError
from spxcast.sources.http import backoff_seconds, error_body, get_with_retries
from spxcast.sources.news.records import RawArticle

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Clock = Callable[[], datetime]


class NewsSource(Protocol):
    """A source of raw articles.

    ``fetch`` yields the articles of ``[start, end)`` (backfills; live sources ignore the range and return
    what is new since their last run). ``commit`` is called after the articles were written to the lake
    so that a live source advances its state (ETags, cursors) only once nothing can be lost.
    """

    provider: str

    def fetch(self, start: datetime | None, end: datetime | None) -> Iterator[RawArticle]: ...

    def commit(self) -> None: ...


@dataclass
class PoliteClient:
    """GET with a politeness delay between requests and retries with exponential backoff.

    Retries as :func:`spxcast.sources.http.get_with_retries` (network errors, HTTP 429 and 5xx; the
    server's ``Retry-After`` or ``backoff_base_s`` doubled per retry, capped at ``backoff_max_s``).
    Other 4xx answers raise :class:`SourceError` at once.
    """

    timeout_s: float = 30.0
    politeness_delay_s: float = 1.0
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    sleep: Sleep = time.sleep
    transport: httpx.BaseTransport | None = None
    requests: int = field(default=0, init=False)
    _last_request: float | None = field(default=None, init=False, repr=False)

    def get(
        self, url: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """The response (status 2xx or 304) to one GET, after retries."""
        with httpx.Client(timeout=self.timeout_s, transport=self.transport, follow_redirects=True) as client:
            response = get_with_retries(
                client,
                url,
                params=params,
                headers=headers,
                max_retries=self.max_retries,
                backoff=lambda attempt: backoff_seconds(attempt, self.backoff_base_s, self.backoff_max_s),
                sleep=self.sleep,
                before_attempt=self._be_polite,
            )
        if response.status_code >= 400 and response.status_code != 304:
            problem = f"HTTP {response.status_code}: {error_body(response)!r}"
            raise SourceError(f"GET {url} was refused ({problem}); check the URL and query")
        return response

    def _be_polite(self) -> None:
        now = time.monotonic()
        if self._last_request is not None:
            wait = self.politeness_delay_s - (now - self._last_request)
            if wait > 0:
                self.sleep(wait)
        self._last_request = time.monotonic()
        self.requests += 1
