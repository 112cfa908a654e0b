"""Concurrent writers (real processes) never duplicate keys in a lake table, its first write included.

Regression: two ingests started at once into a home whose table did not exist both created it (the second
``append`` landed on top of the first), stored the first chunk twice and both exited 0.
"""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from spxcast.config import load_settings
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES, NEWS, QUARANTINE, TABLES

WRITERS = 3


def _together(barrier: Any, job: Any, *args: Any) -> None:
    barrier.wait(timeout=60)
    job(*args)


def _run_at_once(job: Any, *args: Any) -> None:
    """Run ``job(*args)`` in ``WRITERS`` spawned processes released by one barrier; all must exit 0."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=_together, args=(barrier, job, *args)) for _ in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WRITERS


def _duplicate_keys(lake: Lake, name: str) -> int:
    frame = lake.read(name)
    return frame.height - frame.select(TABLES[name].key).unique().height


def _write_candles(root: str) -> None:
    start = datetime(2024, 1, 2, tzinfo=UTC)
    n = 2000
    frame = pl.DataFrame(
        {
            "instrument": ["SPX500_USD"] * n,
            "granularity": ["M1"] * n,
            "ts": pl.Series([start + timedelta(minutes=i) for i in range(n)], dtype=CANDLES.schema["ts"]),
            "open": [100.0] * n,
            "high": [101.0] * n,
            "low": [99.0] * n,
            "close": [100.5] * n,
            "volume": [10] * n,
            "bid_close": pl.Series([None] * n, dtype=pl.Float64),
            "ask_close": pl.Series([None] * n, dtype=pl.Float64),
            "source": ["test"] * n,
            "ingested_at": pl.Series([start] * n, dtype=CANDLES.schema["ingested_at"]),
        }
    )
    lake = Lake(root)
    for offset in range(0, n, 500):  # the first write creates the table, the others merge
        lake.write(CANDLES.name, frame.slice(offset, 1000))


def test_concurrent_writes_into_a_new_table_store_each_key_once(tmp_path: Path) -> None:
    _run_at_once(_write_candles, str(tmp_path / "lake"))
    lake = Lake(tmp_path / "lake")
    assert lake.read(CANDLES.name).height == 2000
    assert _duplicate_keys(lake, CANDLES.name) == 0


def _ingest_market(home: str, source: str, file: str | None) -> None:
    from spxcast.ingest.market import ingest_market

    settings = load_settings(
        home=Path(home),
        **{"market.synthetic.days": 2, "market.chunk_days": 1, "market.files.batch_rows": 700},
    )
    ingest_market(settings, Lake.from_settings(settings), source=source, file=file)


def _ingest_news(home: str, file: str) -> None:
    from spxcast.ingest.news import ingest_news

    settings = load_settings(home=Path(home), **{"news.source": "files", "news.files_path": file})
    ingest_news(settings, Lake.from_settings(settings))


def _candle_file(path: Path) -> Path:
    start = datetime(2024, 1, 2, tzinfo=UTC)
    lines = ["time,open,high,low,close,volume"]
    lines += [f"{(start + timedelta(minutes=i)).isoformat()},100,101,99,100.5,3" for i in range(2000)]
    lines += ["not a time,1,2,3,4,5"] * 3  # quarantine is written concurrently too
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("source", ["synthetic", "files"])
def test_concurrent_market_ingests_into_an_empty_home_duplicate_nothing(tmp_path: Path, source: str) -> None:
    file = str(_candle_file(tmp_path / "bars.csv")) if source == "files" else None
    home = tmp_path / "home"
    _run_at_once(_ingest_market, str(home), source, file)
    lake = Lake(home / "lake")
    written = [CANDLES.name, QUARANTINE.name if source == "files" else "bronze.synthetic_events"]
    for name in written:
        assert _duplicate_keys(lake, name) == 0, name
    if source == "files":
        assert lake.read(CANDLES.name).height == 2000
        assert lake.read(QUARANTINE.name).height == 3


def test_concurrent_news_ingests_into_an_empty_home_duplicate_nothing(tmp_path: Path) -> None:
    file = tmp_path / "news.jsonl"
    start = datetime(2024, 1, 2, tzinfo=UTC)
    rows = [
        {
            "url": f"https://example.com/a/{i}",
            "title": f"Stocks move on story number {i}",
            "published_at": (start + timedelta(minutes=7 * i)).isoformat(),
        }
        for i in range(400)
    ]
    file.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    home = tmp_path / "home"
    _run_at_once(_ingest_news, str(home), str(file))
    lake = Lake(home / "lake")
    assert lake.read(NEWS.name).height == 400
    assert _duplicate_keys(lake, NEWS.name) == 0
    assert _duplicate_keys(lake, QUARANTINE.name) == 0
