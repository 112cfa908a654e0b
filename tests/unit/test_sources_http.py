from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from spxcast.errors import SourceError
from spxcast.sources.http import backoff_seconds, get_with_retries, retry_after_seconds


def _response(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_retry_after_in_seconds_as_a_date_or_unusable() -> None:
    assert retry_after_seconds(_response({"Retry-After": "7"})) == 7.0
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8.0 <= (retry_after_seconds(_response({"Retry-After": in_ten})) or 0) <= 10.0
    assert retry_after_seconds(_response({"Retry-After": "soon"})) is None
    assert retry_after_seconds(_response({})) is None


def test_backoff_doubles_is_capped_and_jitter_scales_it() -> None:
    assert [backoff_seconds(a, 1.0, 5.0) for a in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_seconds(1, 1.0, 5.0, jitter=0.0) == 1.0
    assert backoff_seconds(1, 1.0, 5.0, jitter=0.99) == pytest.approx(2.98)


def _client(statuses: list[tuple[int, dict[str, str]]]) -> tuple[httpx.Client, list[int]]:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers = statuses[min(len(seen), len(statuses) - 1)]
        seen.append(status)
        return httpx.Response(status, headers=headers, text="body")

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_retries_429_and_5xx_honouring_retry_after_then_returns() -> None:
    client, seen = _client([(429, {"Retry-After": "3"}), (503, {}), (200, {})])
    sleeps: list[float] = []
    response = get_with_retries(
        client, "http://x/y", max_retries=5, backoff=lambda a: 0.1 * (a + 1), sleep=sleeps.append
    )
    assert response.status_code == 200
    assert seen == [429, 503, 200]
    assert sleeps == [3.0, 0.2]


def test_other_statuses_are_returned_at_once_and_exhaustion_is_a_source_error() -> None:
    client, seen = _client([(404, {})])
    response = get_with_retries(
        client, "http://x/y", max_retries=5, backoff=lambda a: 0.0, sleep=lambda s: None
    )
    assert (response.status_code, seen) == (404, [404])
    client, seen = _client([(500, {})])
    with pytest.raises(SourceError, match="kept failing after 3 attempts; last error HTTP 500"):
        get_with_retries(client, "http://x/y", max_retries=2, backoff=lambda a: 0.0, sleep=lambda s: None)
    assert seen == [500, 500, 500]
