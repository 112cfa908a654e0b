"""The RSS/Atom source against loopback feeds: formats, conditional GET (304), errors, malformed entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from news_loopback import Request, serve

from spxcast.config import Settings
from spxcast.ingest.news import ingest_news, rss_state_file
from spxcast.lake import Lake
from spxcast.sources.news import PoliteClient, RssSource

SEEN = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Markets</title><link>https://feed.example.com</link>
<language>en</language>
<item><title>Stocks rally as Fed signals patience</title><link>https://feed.example.com/a?utm_source=rss</link>
<description>Wall Street gains.</description><pubDate>Mon, 03 Jun 2024 13:55:00 GMT</pubDate></item>
<item><title>Dow slips on weak jobs data</title><link>https://feed.example.com/b</link>
<pubDate>Mon, 03 Jun 2024 13:40:00 GMT</pubDate></item>
<item><title>Stocks entry without a link</title><pubDate>Mon, 03 Jun 2024 13:30:00 GMT</pubDate></item>
<item><title>Stocks with a broken date</title><link>https://feed.example.com/c</link>
<pubDate>the 40th of Junetober</pubDate></item>
<item><title>Gardening tips for June</title><link>https://feed.example.com/d</link></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom markets</title><id>urn:x</id>
<updated>2024-06-03T13:00:00Z</updated>
<entry><title>S&amp;P 500 hits record high</title><link href="https://atom.example.com/e1"/><id>e1</id>
<updated>2024-06-03T13:50:00Z</updated><summary>Stocks climb.</summary></entry>
<entry><title>Stocks rally as Fed signals patience - Atom News</title>
<link href="https://atom.example.com/e2"/><id>e2</id>
<updated>2024-06-03T13:58:00Z</updated></entry>
</feed>"""


def _feeds(state: dict[str, int]):
    def answer(request: Request) -> tuple[int, dict[str, str], bytes]:
        if request.path == "/rss.xml":
            if request.headers.get("If-None-Match") == '"v1"':
                return 304, {}, b""
            return 200, {"ETag": '"v1"', "Content-Type": "application/rss+xml"}, RSS
        if request.path == "/atom.xml":
            if request.headers.get("If-Modified-Since") == "Mon, 03 Jun 2024 13:58:00 GMT":
                return 304, {}, b""
            return 200, {"Last-Modified": "Mon, 03 Jun 2024 13:58:00 GMT"}, ATOM
        if request.path == "/flaky.xml":
            state["flaky"] = state.get("flaky", 0) + 1
            return (
                (500, {}, b"oops")
                if state["flaky"] == 1
                else (200, {}, RSS.replace(b"feed.example", b"flaky"))
            )
        if request.path == "/broken.xml":
            return 200, {}, b"this is not a feed at all <<<"
        return 404, {}, b"no such feed"

    return answer


def _settings(settings: Settings, url: str, *paths: str) -> Settings:
    news = settings.news.model_copy(
        update={
            "source": "rss",
            "feeds": [f"{url}{p}" for p in paths],
            "politeness_delay_s": 0.0,
            "backoff_base_s": 0.0,
            "max_retries": 2,
            "start": "2024-06-01",
            "end": "2024-06-04",
        }
    )
    return settings.model_copy(update={"news": news})


def test_rss_and_atom_items_with_conditional_get_on_the_second_run(settings: Settings) -> None:
    with serve(_feeds({})) as server:
        config = _settings(settings, server.url, "/rss.xml", "/atom.xml")
        lake = Lake.from_settings(config)
        first = ingest_news(config, lake, clock=lambda: SEEN)
        assert first["input"] == 7
        assert first["accepted"] == 3  # rss a, b; atom e1 (e2 is rss a syndicated, later)
        assert first["irrelevant"] == 1
        assert first["quarantined"] == 2
        assert first["duplicates"] == 1
        articles = lake.read("bronze.news").sort("published_at")
        assert set(articles["received_at"]) == {SEEN}  # live source: the time we first saw them
        assert articles["summary"].to_list()[-1] == "Wall Street gains."
        state = json.loads(rss_state_file(config).read_text())
        assert state[f"{server.url}/rss.xml"] == {"etag": '"v1"'}
        assert state[f"{server.url}/atom.xml"] == {"last_modified": "Mon, 03 Jun 2024 13:58:00 GMT"}

        second = ingest_news(config, lake, clock=lambda: SEEN)
    assert second["input"] == 0
    assert second["accepted"] == 0
    assert sorted(second["not_modified"]) == sorted(config.news.feeds)
    second_requests = server.requests[2:]
    assert second_requests[0].headers["If-None-Match"] == '"v1"'
    assert second_requests[1].headers["If-Modified-Since"] == "Mon, 03 Jun 2024 13:58:00 GMT"
    quarantined = lake.read("bronze.quarantine")
    reasons = sorted(tuple(r) for r in quarantined["reasons"].to_list())
    assert reasons == [("missing_url",), ("unparseable_published_at",)]


def test_state_is_not_advanced_when_the_write_fails(settings: Settings, tmp_path: Path) -> None:
    with serve(_feeds({})) as server:
        config = _settings(settings, server.url, "/rss.xml")
        client = PoliteClient(politeness_delay_s=0, backoff_base_s=0)
        source = RssSource(client, config.news.feeds, tmp_path / "state.json", clock=lambda: SEEN)
        assert len(list(source.fetch(None, None))) == 5
        assert not (tmp_path / "state.json").exists()  # nothing committed yet
        source.commit()
        again = RssSource(client, config.news.feeds, tmp_path / "state.json", clock=lambda: SEEN)
        assert list(again.fetch(None, None)) == []


def test_a_failing_feed_is_reported_and_the_others_still_ingest(settings: Settings) -> None:
    with serve(_feeds({})) as server:
        config = _settings(settings, server.url, "/flaky.xml", "/broken.xml", "/missing.xml")
        result = ingest_news(config, Lake.from_settings(config), clock=lambda: SEEN)
    assert result["accepted"] == 2  # the flaky feed answered 500 once, then its items
    assert set(result["feed_errors"]) == {f"{server.url}/broken.xml", f"{server.url}/missing.xml"}
    assert "not readable" in result["feed_errors"][f"{server.url}/broken.xml"]
    assert "404" in result["feed_errors"][f"{server.url}/missing.xml"]
