"""One bad record inside an otherwise good file: exactly that record is quarantined, with its own reason.

Regressions: a non-UTF-8 byte, a field over 128 KiB or a type-mixed NDJSON line rejected the whole file
(sometimes as "unexpected ...", exit 70); ``{not json`` in a news file was quarantined as missing fields;
news dated 1700 or 2200 was accepted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spxcast.config import Settings
from spxcast.ingest.market import ingest_market
from spxcast.lake import Lake
from spxcast.sources.news import FilesSource, RelevanceFilter, to_bronze

NOW = datetime(2024, 6, 1, tzinfo=UTC)
BASE = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
GOOD = 40
BAD_AT = 17
HUGE = "x" * (130 * 1024)


def _csv_line(i: int) -> bytes:
    return f"{(BASE + timedelta(minutes=i)).isoformat()},4700,4702,4699,4701,{i}".encode()


def _json_line(i: int, **changes: object) -> bytes:
    mid = {"o": "4700.0", "h": "4702.0", "l": "4699.0", "c": "4701.0"}
    record = {"time": (BASE + timedelta(minutes=i)).isoformat(), "volume": i, "mid": mid, **changes}
    return json.dumps(record).encode()


MARKET_CASES = {
    "csv_bad_encoding": ("csv", _csv_line(BAD_AT).replace(b"4701,", b"47\xff01,"), "invalid_encoding"),
    "csv_oversized_field": ("csv", _csv_line(BAD_AT) + HUGE.encode(), "oversized_field"),
    "ndjson_bad_encoding": (
        "ndjson",
        _json_line(BAD_AT).replace(b"4702.0", b"47\xfe02.0"),
        "invalid_encoding",
    ),
    "ndjson_mixed_types": (
        "ndjson",
        _json_line(BAD_AT, mid={"o": {"x": 1}, "h": 1, "l": 1, "c": 1}),
        "mixed_types",
    ),
    "ndjson_list_field": ("ndjson", _json_line(BAD_AT, volume=[1, 2]), "mixed_types"),
    "ndjson_not_json": ("ndjson", b"{not json", "unparseable_record"),
    "ndjson_oversized_field": (
        "ndjson",
        _json_line(BAD_AT, mid={"o": HUGE, "h": 1, "l": 1, "c": 1}),
        "oversized_field",
    ),
}


@pytest.mark.parametrize("case", sorted(MARKET_CASES))
def test_one_bad_candle_record_is_quarantined_alone(settings: Settings, tmp_path: Path, case: str) -> None:
    fmt, bad, reason = MARKET_CASES[case]
    make = _csv_line if fmt == "csv" else _json_line
    lines = [make(i) for i in range(GOOD)]
    lines.insert(BAD_AT, bad)
    header = [b"time,open,high,low,close,volume"] if fmt == "csv" else []
    path = tmp_path / f"bars.{fmt}"
    path.write_bytes(b"\n".join(header + lines) + b"\n")
    lake = Lake.from_settings(settings)
    report = ingest_market(settings, lake, source="files", file=path, now=NOW)
    assert report.input_rows == GOOD + 1
    assert (report.accepted_rows, report.quarantined_rows) == (GOOD, 1)
    assert report.reasons == {reason: 1}
    assert lake.read("bronze.candles").height == GOOD
    [stored] = lake.read("bronze.quarantine")["reasons"].to_list()
    assert stored == [reason]


def _article(i: int, **changes: object) -> dict[str, object]:
    published = (BASE + timedelta(minutes=7 * i)).isoformat()
    return {"url": f"https://news.example/{i}", "title": f"Story {i}", "published_at": published, **changes}


def _jsonl(bad: bytes) -> tuple[str, bytes]:
    lines = [json.dumps(_article(i)).encode() for i in range(GOOD)]
    lines.insert(BAD_AT, bad)
    return "jsonl", b"\n".join(lines) + b"\n"


def _news_csv(bad: bytes) -> tuple[str, bytes]:
    lines = [
        f"https://news.example/{i},Story {i},{_article(i)['published_at']}".encode() for i in range(GOOD)
    ]
    lines.insert(BAD_AT, bad)
    return "csv", b"\n".join([b"url,title,published_at", *lines]) + b"\n"


NEWS_CASES = {
    "csv_bad_encoding": (
        _news_csv(b"https://news.example/bad,Caf\xe9 story,2024-01-02T15:00:00Z"),
        "invalid_encoding",
    ),
    "csv_oversized_field": (
        _news_csv(b"https://news.example/big," + HUGE.encode() + b",2024-01-02T15:00:00Z"),
        "oversized_field",
    ),
    "csv_surplus_fields": (
        _news_csv(b"https://news.example/more,Story,2024-01-02T15:00:00Z,extra"),
        "unparseable_record",
    ),
    "jsonl_not_json": (_jsonl(b"{not json"), "unparseable_record"),
    "jsonl_not_an_object": (_jsonl(b"[1, 2]"), "unparseable_record"),
    "jsonl_bad_encoding": (
        _jsonl(json.dumps(_article(99)).encode().replace(b"Story", b"St\xffory")),
        "invalid_encoding",
    ),
    "jsonl_mixed_types": (_jsonl(json.dumps(_article(99, title={"text": "Story"})).encode()), "mixed_types"),
    "jsonl_oversized_field": (_jsonl(json.dumps(_article(99, summary=HUGE)).encode()), "oversized_field"),
    "jsonl_dated_1700": (
        _jsonl(json.dumps(_article(99, published_at="1700-01-02T00:00:00Z")).encode()),
        "time_out_of_range",
    ),
    "jsonl_dated_2200": (
        _jsonl(json.dumps(_article(99, published_at="2200-01-02T00:00:00Z")).encode()),
        "time_out_of_range",
    ),
}


@pytest.mark.parametrize("case", sorted(NEWS_CASES))
def test_one_bad_news_record_is_quarantined_alone(tmp_path: Path, case: str) -> None:
    (suffix, content), reason = NEWS_CASES[case]
    path = tmp_path / f"news.{suffix}"
    path.write_bytes(content)
    batch = to_bronze(
        FilesSource(path).fetch(None, None),
        provider="files",
        ingested_at=NOW,
        backfill_latency=timedelta(minutes=5),
        relevance=RelevanceFilter([]),
    )
    assert batch.input_count == GOOD + 1
    assert (batch.accepted.height, batch.quarantined.height) == (GOOD, 1)
    assert batch.quarantined["reasons"].to_list() == [[reason]]


def test_identical_bad_lines_are_each_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_bytes(_jsonl(b"{not json\n{not json")[1])
    batch = to_bronze(
        FilesSource(path).fetch(None, None),
        provider="files",
        ingested_at=NOW,
        backfill_latency=timedelta(minutes=5),
        relevance=RelevanceFilter([]),
    )
    assert batch.quarantined["record_hash"].n_unique() == 2, "their line numbers keep them apart"
