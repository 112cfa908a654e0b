"""The GDELT DOC 2.0 client against a loopback server answering in GDELT's artlist JSON format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from news_loopback import Request, serve

from spxcast.errors import SourceError
from spxcast.sources.news import GdeltSource, PoliteClient, RelevanceFilter, to_bronze

START = datetime(2024, 2, 1, tzinfo=UTC)
END = START + timedelta(days=1)
_FMT = "%Y%m%d%H%M%S"


def _corpus(n: int) -> list[dict[str, str]]:
    """n articles spread over the day, in GDELT's artlist fields (seendate = crawl time)."""
    out = []
    for i in range(n):
        seen = START + timedelta(seconds=i * 86400 // n)
        out.append(
            {
                "url": f"https://news{i % 7}.example.com/markets/story-{i}",
                "url_mobile": "",
                "title": f"Stocks move on story number {i}",
                "seendate": seen.strftime("%Y%m%dT%H%M%SZ"),
                "socialimage": "",
                "domain": f"news{i % 7}.example.com",
                "language": "English",
                "sourcecountry": "United States",
            }
        )
    return out


def _gdelt(corpus: list[dict[str, str]]):
    def answer(request: Request) -> tuple[int, dict[str, str], bytes]:
        q = request.query
        assert q["mode"] == "artlist"
        assert q["format"] == "json"
        lo = datetime.strptime(q["startdatetime"], _FMT).replace(tzinfo=UTC)
        hi = datetime.strptime(q["enddatetime"], _FMT).replace(tzinfo=UTC)
        hits = [
            a
            for a in corpus
            if lo <= datetime.strptime(a["seendate"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) <= hi
        ]
        hits = sorted(hits, key=lambda a: a["seendate"], reverse=True)[: int(q["maxrecords"])]
        body = json.dumps({"articles": hits}).encode() if hits else b"{}"
        return 200, {"Content-Type": "application/json"}, body

    return answer


def _source(url: str, **kwargs: object) -> GdeltSource:
    client = PoliteClient(politeness_delay_s=0.0, backoff_base_s=0.0, max_retries=3, timeout_s=5)
    return GdeltSource(client, base_url=f"{url}/api/v2/doc/doc", query="stocks", **kwargs)  # type: ignore[arg-type]


def test_full_windows_are_split_until_nothing_is_truncated() -> None:
    corpus = _corpus(900)
    with serve(_gdelt(corpus)) as server:
        source = _source(server.url, max_records=250)
        records = list(source.fetch(START, END))
    assert len(records) == 900
    assert {r["url"] for r in records} == {a["url"] for a in corpus}
    assert source.windows > 4
    assert source.truncated_windows == 0
    assert all(int(r.query["maxrecords"]) == 250 for r in server.requests)
    full = [r for r in server.requests]
    assert len(full) == source.windows


def test_seendate_is_kept_as_crawl_time_and_received_at_is_crawl_plus_latency() -> None:
    corpus = _corpus(3)
    with serve(_gdelt(corpus)) as server:
        records = list(_source(server.url).fetch(START, END))
    batch = to_bronze(
        records,
        provider="gdelt",
        ingested_at=END,
        backfill_latency=timedelta(minutes=5),
        relevance=RelevanceFilter(["stocks"]),
    )
    row = batch.accepted.sort("crawled_at").row(0, named=True)
    assert row["published_at"] is None
    assert row["crawled_at"] == START
    assert row["received_at"] == START + timedelta(minutes=5)


def test_server_errors_are_retried_then_succeed() -> None:
    calls = {"n": 0}
    corpus = _corpus(5)
    inner = _gdelt(corpus)

    def flaky(request: Request) -> tuple[int, dict[str, str], bytes]:
        calls["n"] += 1
        if calls["n"] <= 2:
            return 500, {}, b"internal error"
        return inner(request)

    with serve(flaky) as server:
        records = list(_source(server.url).fetch(START, END))
    assert len(records) == 5
    assert calls["n"] == 3


def test_persistent_errors_raise_a_source_error_naming_the_url() -> None:
    with (
        serve(lambda r: (503, {}, b"busy")) as server,
        pytest.raises(SourceError, match="kept failing after 4 attempts"),
    ):
        list(_source(server.url).fetch(START, END))
    with serve(lambda r: (400, {}, b"bad query")) as server, pytest.raises(SourceError, match="refused"):
        list(_source(server.url).fetch(START, END))


def test_empty_pages_and_text_answers() -> None:
    with serve(lambda r: (200, {}, b"")) as server:
        assert list(_source(server.url).fetch(START, END)) == []
    with serve(lambda r: (200, {}, b"{}")) as server:
        assert list(_source(server.url).fetch(START, END)) == []
    text = b"Your search contained a phrase that was too short."
    with serve(lambda r: (200, {}, text)) as server, pytest.raises(SourceError, match="not JSON"):
        list(_source(server.url).fetch(START, END))


def test_malformed_entries_are_quarantined_not_fatal() -> None:
    articles = [
        *_corpus(2),
        {"title": "Stocks but no url", "seendate": "20240201T100000Z"},
        "junk",
        {"url": "https://a.com/x", "title": "Stocks odd date", "seendate": "someday"},
    ]
    with serve(lambda r: (200, {}, json.dumps({"articles": articles}).encode())) as server:
        records = list(_source(server.url).fetch(START, END))
    batch = to_bronze(
        records,
        provider="gdelt",
        ingested_at=END,
        backfill_latency=timedelta(0),
        relevance=RelevanceFilter([]),
    )
    assert batch.accepted.height == 2
    assert batch.quarantined.height == 3
    assert any("junk" in raw for raw in batch.quarantined["raw"])


def test_a_window_that_cannot_be_split_further_is_counted_as_truncated() -> None:
    same_second = [
        dict(a, seendate="20240201T120000Z", url=f"https://s.com/{i}") for i, a in enumerate(_corpus(30))
    ]
    with serve(_gdelt(same_second)) as server:
        source = _source(server.url, max_records=10, min_window=timedelta(minutes=30))
        records = list(source.fetch(START, END))
    assert source.truncated_windows == 1
    assert len(records) == 10


def test_politeness_delay_and_exponential_backoff_are_applied() -> None:
    waits: list[float] = []
    calls = {"n": 0}
    inner = _gdelt(_corpus(600))

    def flaky(request: Request) -> tuple[int, dict[str, str], bytes]:
        calls["n"] += 1
        return (429, {}, b"slow down") if calls["n"] <= 2 else inner(request)

    client = PoliteClient(politeness_delay_s=5.0, backoff_base_s=2.0, backoff_max_s=3.0, sleep=waits.append)
    with serve(flaky) as server:
        source = GdeltSource(client, base_url=server.url, query="stocks")
        assert len(list(source.fetch(START, END))) == 600
    backoffs = [w for w in waits if w < 4.0]
    polite = [w for w in waits if w >= 4.0]
    assert backoffs == [2.0, 3.0]  # base, then doubled and capped at backoff_max_s
    assert len(polite) == client.requests - 1  # every request after the first waited
    assert all(4.0 <= w <= 5.0 for w in polite)
