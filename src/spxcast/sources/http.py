"""HTTP GET with retries, shared by every network source (OANDA, GDELT, RSS).

Retried: transport errors (connection refused, timeouts, protocol errors), HTTP 429 and 5xx, up to
``max_retries`` times. The wait is the server's ``Retry-After`` when it sends one (delta seconds or an
HTTP date), else exponential backoff ``min(max_s, base_s * 2**attempt)``, optionally scaled by a jitter
factor in [0.5, 1.5). Any other answer is returned for the caller to judge: each provider has its own idea
of success (200 only, or 304 for a conditional GET) and its own error format. Request headers, which may
carry tokens, are never logged, and their credentials are registered as secrets, so a server that echoes
them in an error body cannot make them appear in a message (:func:`spxcast.errors.redact`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from spxcast.errors import SourceError, redact, register_secret

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


def backoff_seconds(attempt: int, base_s: float, max_s: float, jitter: float | None = None) -> float:
    """Seconds before retry ``attempt + 1``: ``min(max_s, base_s * 2**attempt)``, times ``0.5 + jitter``.

    ``jitter`` is a draw in [0, 1) (e.g. ``random.random()``); seconds.
    """
    delay = min(max_s, base_s * 2**attempt)
    return delay if jitter is None else delay * (0.5 + jitter)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}


def register_credentials(headers: Mapping[str, str] | None) -> None:
    """Register the credentials among request headers (the whole value and its token after a scheme)."""
    for name, value in (headers or {}).items():
        if name.lower() in _CREDENTIAL_HEADERS:
            register_secret(value)
            register_secret(value.partition(" ")[2].strip())


def error_body(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error response's body, fit for a message (secrets removed)."""
    return redact(response.text[:limit])


def is_retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def get_with_retries(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_retries: int,
    backoff: Callable[[int], float],
    sleep: Sleep,
    before_attempt: Callable[[], None] | None = None,
    label: str = "GET",
) -> httpx.Response:
    """The first non-retryable response to ``GET url``; :class:`SourceError` once the retries are spent.

    ``backoff(attempt)`` gives the wait when the server sends no ``Retry-After``; ``before_attempt`` runs
    before every request (a politeness delay).
    """
    register_credentials(headers)
    problem = "no attempt made"
    for attempt in range(max_retries + 1):
        if before_attempt is not None:
            before_attempt()
        wait: float | None = None
        try:
            response = client.get(url, params=params, headers=headers)
        except httpx.TransportError as exc:
            problem = redact(f"{type(exc).__name__}: {exc}")
        else:
            if not is_retryable(response.status_code):
                return response
            problem = f"HTTP {response.status_code}: {error_body(response)!r}"
            wait = retry_after_seconds(response)
        if attempt == max_retries:
            break
        delay = wait if wait is not None else backoff(attempt)
        log.warning(
            "%s %s failed (%s); retry %d/%d in %.2fs", label, url, problem, attempt + 1, max_retries, delay
        )
        sleep(delay)
    raise SourceError(f"{label} {url} kept failing after {max_retries + 1} attempts; last error {problem}")
