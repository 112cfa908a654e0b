"""The OANDA client against a local HTTP server on loopback that speaks OANDA's v20 candles format."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import polars as pl
import pytest
from pydantic import SecretStr

from spxcast.config import OandaSettings, Settings
from spxcast.errors import ConfigError, SourceError
from spxcast.ingest.market import ingest_market
from spxcast.lake import Lake
from spxcast.sources.market.calendar import is_trading_minute, minutes_since_anchor
from spxcast.sources.market.oanda import OandaCandleSource

TOKEN = "secret-token-0123456789abcdef"
START = datetime(2024, 1, 3, 20, 0, tzinfo=UTC)
NOW = datetime(2024, 2, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def oanda_candles(count: int) -> list[dict[str, Any]]:
    """``count`` M1 candles on trading minutes from START; the last one is still forming."""
    out: list[dict[str, Any]] = []
    moment = START
    while len(out) < count:
        if is_trading_minute([minutes_since_anchor(moment)])[0]:
            price = 4700 + len(out) % 50
            out.append(
                {
                    "complete": True,
                    "volume": 5 + len(out) % 7,
                    "time": _stamp(moment),
                    "mid": {
                        "o": f"{price:.1f}",
                        "h": f"{price + 1:.1f}",
                        "l": f"{price - 1:.1f}",
                        "c": f"{price + 0.5:.1f}",
                    },
                    "bid": {"o": "0", "h": "0", "l": "0", "c": f"{price + 0.4:.1f}"},
                    "ask": {"o": "0", "h": "0", "l": "0", "c": f"{price + 0.6:.1f}"},
                }
            )
        moment += timedelta(minutes=1)
    out[-1]["complete"] = False
    return out


class FakeOanda:
    """State of the loopback server: candles, scripted failures, and every request it saw."""

    def __init__(self, candles: list[dict[str, Any]], failures: list[tuple[int, dict[str, str]]]) -> None:
        self.candles = candles
        self.failures = list(failures)
        self.requests: list[dict[str, Any]] = []

    def page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        start = datetime.fromisoformat(query["from"][0].replace("Z", "+00:00"))
        count = int(query["count"][0])
        include_first = query.get("includeFirst", ["true"])[0] != "false"
        price = query["price"][0]
        selected = []
        for candle in self.candles:
            moment = datetime.fromisoformat(candle["time"].replace("000000000Z", "+00:00"))
            if moment > start or (include_first and moment == start):
                shown = {k: v for k, v in candle.items() if k not in {"bid", "ask"}}
                shown.update({k: candle[k] for k, letter in (("bid", "B"), ("ask", "A")) if letter in price})
                selected.append(shown)
            if len(selected) == count:
                break
        return {"instrument": "SPX500_USD", "granularity": query["granularity"][0], "candles": selected}


@pytest.fixture
def server() -> Iterator[tuple[str, FakeOanda]]:
    state = FakeOanda(oanda_candles(1200), [])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            state.requests.append(
                {"path": url.path, "query": query, "auth": self.headers.get("Authorization")}
            )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"errorMessage": "Insufficient authorization to perform request."})
            if state.failures:
                status, headers = state.failures.pop(0)
                return self._send(status, {"errorMessage": "try later"}, headers)
            if not url.path.endswith("/v3/instruments/SPX500_USD/candles"):
                return self._send(404, {"errorMessage": "Invalid value specified for 'instrument'"})
            return self._send(200, state.page(query))

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    thread.join()


def client(base_url: str, sleeps: list[float] | None = None, **config: Any) -> OandaCandleSource:
    settings = OandaSettings(
        token=SecretStr(TOKEN),
        base_url=base_url,
        max_count=100,
        backoff_base_s=0.001,
        backoff_max_s=0.01,
        **config,
    )
    recorded = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:
        recorded.append(seconds)

    return OandaCandleSource(settings, sleep=sleep)


def fetch_all(source: OandaCandleSource, end: datetime = NOW) -> pl.DataFrame:
    return pl.concat(list(source.fetch("SPX500_USD", "M1", START, end)))


def test_every_complete_candle_arrives_exactly_once_through_failures(
    server: tuple[str, FakeOanda], caplog: pytest.LogCaptureFixture
) -> None:
    base_url, state = server
    state.failures = [(429, {"Retry-After": "2"}), (503, {}), (500, {}), (502, {})]
    sleeps: list[float] = []
    caplog.set_level(logging.DEBUG)
    frame = fetch_all(client(base_url, sleeps))
    expected = [c["time"] for c in state.candles if c["complete"]]
    assert frame["ts"].to_list() == expected, "all complete candles, in order, none twice"
    assert frame.height == 1199
    assert sleeps[0] == 2.0, "Retry-After is honoured"
    assert all(0 < s <= 0.015 for s in sleeps[1:]), "exponential backoff with jitter, capped"
    pages = [r for r in state.requests if r["query"].get("count")]
    assert all(int(r["query"]["count"][0]) <= 100 for r in pages)
    assert "includeFirst" not in pages[0]["query"]
    assert all(r["query"]["includeFirst"] == ["false"] for r in pages[5:])
    assert TOKEN not in caplog.text, "the token is never logged"
    assert frame["bid_close"][0] is not None
    assert frame["ask_close"][0] is not None


def test_pagination_boundary_full_last_page(server: tuple[str, FakeOanda]) -> None:
    base_url, state = server
    state.candles = oanda_candles(301)  # 300 complete = exactly three full pages, then the forming one
    frame = fetch_all(client(base_url))
    assert frame.height == 300
    assert frame["ts"].n_unique() == 300


def test_range_end_is_exclusive_and_mid_only(server: tuple[str, FakeOanda]) -> None:
    base_url, state = server
    end = datetime.fromisoformat(state.candles[250]["time"].replace("000000000Z", "+00:00"))
    frame = fetch_all(client(base_url, price="M"), end=end)
    assert frame.height == 250
    assert frame["bid_close"].null_count() == 250
    assert state.requests[-1]["query"]["price"] == ["M"]


def test_persistent_failure_and_refusals_are_clear_errors(server: tuple[str, FakeOanda]) -> None:
    base_url, state = server
    state.failures = [(503, {})] * 10
    with pytest.raises(SourceError, match="kept failing after 3 attempts"):
        fetch_all(client(base_url, max_retries=2))
    state.failures = []
    bad = OandaCandleSource(OandaSettings(token=SecretStr("wrong"), base_url=base_url))
    with pytest.raises(SourceError, match="401") as refused:
        fetch_all(bad)
    assert "wrong" not in str(refused.value)


def test_missing_token_names_the_environment_variable() -> None:
    with pytest.raises(ConfigError, match="SPXCAST_OANDA__TOKEN"):
        OandaCandleSource(OandaSettings())
    with pytest.raises(ConfigError, match="must contain M"):
        OandaCandleSource(OandaSettings(token=SecretStr(TOKEN), price="BA"))


def test_ingestion_continues_after_the_newest_stored_bar(
    settings: Settings, server: tuple[str, FakeOanda]
) -> None:
    base_url, state = server
    settings.oanda = OandaSettings(token=SecretStr(TOKEN), base_url=base_url, max_count=100)
    settings.market.chunk_days = 1
    lake = Lake.from_settings(settings)
    middle = datetime.fromisoformat(state.candles[500]["time"].replace("000000000Z", "+00:00"))
    first = ingest_market(
        settings, lake, source="oanda", start=START.isoformat(), end=middle.isoformat(), now=NOW
    )
    assert first.accepted_rows == 500
    state.requests.clear()
    second = ingest_market(settings, lake, source="oanda", end=NOW.isoformat(), now=NOW)
    assert second.accepted_rows == 699
    newest_stored = datetime.fromisoformat(state.candles[499]["time"].replace("000000000Z", "+00:00"))
    resumed_from = datetime.fromisoformat(state.requests[0]["query"]["from"][0].replace("Z", "+00:00"))
    assert resumed_from == newest_stored + timedelta(minutes=1), (
        "the download restarts after the newest stored bar"
    )
    stored = lake.read("bronze.candles")
    assert stored.height == 1199
    assert stored["ts"].n_unique() == 1199
    assert stored["source"].unique().to_list() == ["oanda"]
    settings.instrument = "NAS100_USD"
    with pytest.raises(ConfigError, match="nothing of NAS100_USD M1 is stored yet"):
        ingest_market(settings, lake, source="oanda", now=NOW)


def test_a_malformed_candle_is_quarantined_not_lost(
    settings: Settings, server: tuple[str, FakeOanda]
) -> None:
    base_url, state = server
    state.candles[10]["mid"]["h"] = "n/a"
    state.candles[11]["mid"]["l"] = "99999"
    settings.oanda = OandaSettings(token=SecretStr(TOKEN), base_url=base_url, max_count=100)
    lake = Lake.from_settings(settings)
    report = ingest_market(
        settings, lake, source="oanda", start=START.isoformat(), end=NOW.isoformat(), now=NOW
    )
    assert (report.input_rows, report.accepted_rows, report.quarantined_rows) == (1199, 1197, 2)
    assert report.reasons == {"non_numeric_price": 1, "high_below_low": 1}
    assert lake.read("bronze.quarantine")["source"].to_list() == ["oanda/SPX500_USD/M1"] * 2
