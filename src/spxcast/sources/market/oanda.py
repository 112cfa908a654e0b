"""OANDA v20 REST candles: ``GET /v3/instruments/{instrument}/candles``.

Pages are requested with ``from`` and ``count`` (at most 5000); after the first page ``from`` is the last
candle received and ``includeFirst=false``, so no candle arrives twice. Only ``complete`` candles are
kept; an incomplete one is the bar still forming, so nothing after it exists yet. 429 and 5xx answers
and transport errors are retried with exponential backoff and jitter, honouring ``Retry-After``. The
token is sent in the ``Authorization`` header and never logged. Prices come as strings and are passed on
as such; validation parses them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import polars as pl

from spxcast.config import OandaSettings
from spxcast.errors import ConfigError, SourceError, SpxcastError, redact, register_secret
from spxcast.sources.http import backoff_seconds, error_body, get_with_retries
from spxcast.timeutil import parse_utc

log = logging.getLogger(__name__)

TOKEN_ENV = "SPXCAST_OANDA__TOKEN"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OandaCandleSource:
    """OANDA candles as a :class:`~spxcast.sources.market.base.CandleSource` (one frame per page)."""

    name = "oanda"

    def __init__(
        self,
        config: OandaSettings,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        token = config.token.get_secret_value() if config.token is not None else ""
        if not token:
            raise ConfigError(
                f"OANDA needs an API token: set the environment variable {TOKEN_ENV} "
                "(a practice or live v20 personal access token)"
            )
        price = config.price.upper()
        if not price or set(price) - set("MBA") or "M" not in price:
            raise ConfigError(f"oanda.price {config.price!r} must contain M (mid) and optionally B and A")
        register_secret(token)
        self.config = config
        self.price = "".join(p for p in "MBA" if p in price)
        self._headers = {"Authorization": f"Bearer {token}", "Accept-Datetime-Format": "RFC3339"}
        self._client = client or httpx.Client(timeout=config.timeout_s)
        self._sleep = sleep
        self._jitter = jitter

    def fetch(
        self, instrument: str, granularity: str, start: datetime | None, end: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield complete candles with ``start <= ts < end``, page by page."""
        if start is None or end is None:
            raise ConfigError("the OANDA source needs a start and an end")
        url = f"{self.config.resolved_base_url()}/v3/instruments/{instrument}/candles"
        cursor = _rfc3339(start)
        first_page = True
        while True:
            params: dict[str, Any] = {
                "granularity": granularity,
                "price": self.price,
                "from": cursor,
                "count": self.config.max_count,
            }
            if not first_page:
                params["includeFirst"] = "false"
            payload = self._get(url, params)
            candles = payload.get("candles") or [] if isinstance(payload, dict) else []
            times = [_candle_time(c) for c in candles]
            # A candle without a readable time is passed on for validation to quarantine.
            in_range = [c for c, t in zip(candles, times, strict=True) if t is None or t < end]
            complete = [c for c in in_range if c.get("complete", False)]
            if complete:
                yield self._frame(complete)
            log.info(
                "OANDA %s %s from %s: %d candles, %d complete in range",
                instrument,
                granularity,
                cursor,
                len(candles),
                len(complete),
            )
            finished = (
                len(candles) < self.config.max_count
                or len(in_range) < len(candles)
                or len(complete) < len(in_range)
            )
            if finished:
                return
            readable = [t for t in times if t is not None]
            if not readable:
                raise SourceError(f"OANDA answered {url} with a page of candles without readable times")
            cursor, first_page = _rfc3339(readable[-1]), False

    def _frame(self, candles: list[dict[str, Any]]) -> pl.DataFrame:
        def quote(candle: dict[str, Any], side: str, field: str) -> str | None:
            value = candle.get(side) or {}
            return value.get(field)

        return pl.DataFrame(
            {
                "ts": [c.get("time") for c in candles],
                **{k: [quote(c, "mid", k[0]) for c in candles] for k in ("open", "high", "low", "close")},
                "volume": [c.get("volume") for c in candles],
                "bid_close": [quote(c, "bid", "c") for c in candles],
                "ask_close": [quote(c, "ask", "c") for c in candles],
            },
            schema={k: pl.Utf8 for k in ("ts", "open", "high", "low", "close")}
            | {"volume": pl.Int64, "bid_close": pl.Utf8, "ask_close": pl.Utf8},
        )

    def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET with retries on 429/5xx and transport errors; other errors raise :class:`SourceError`."""
        response = get_with_retries(
            self._client,
            url,
            params=params,
            headers=self._headers,
            max_retries=self.config.max_retries,
            backoff=lambda attempt: backoff_seconds(
                attempt, self.config.backoff_base_s, self.config.backoff_max_s, self._jitter()
            ),
            sleep=self._sleep,
            label="OANDA",
        )
        if response.status_code != 200:
            raise SourceError(
                f"OANDA refused {url} with HTTP {response.status_code}: {_error_message(response)}"
            )
        try:
            payload: dict[str, Any] = response.json()
        except ValueError as exc:
            raise SourceError(f"OANDA answered {url} with a body that is not JSON") from exc
        return payload


def _candle_time(candle: dict[str, Any]) -> datetime | None:
    try:
        return parse_utc(str(candle["time"]))
    except (KeyError, SpxcastError):
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json().get("errorMessage")
    except (ValueError, AttributeError):
        message = None
    return redact(str(message)[:200]) if message is not None else error_body(response)
