"""append_bars: the one validate-quarantine-commit step of bronze.candles (batch ingestion and live loop)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from spxcast.config import QualitySettings
from spxcast.ingest.market import append_bars
from spxcast.lake import Lake

NOW = datetime(2024, 1, 3, tzinfo=UTC)
BASE = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _bars(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [(BASE + timedelta(minutes=i)).isoformat() for i in range(n)],
            "open": ["4700"] * n,
            "high": ["4702"] * n,
            "low": ["4699"] * n,
            "close": ["4701"] * n,
            "volume": list(range(n)),
        }
    )


def _append(lake: Lake, raw: pl.DataFrame, now: datetime = NOW):
    return append_bars(
        lake,
        raw,
        instrument="SPX500_USD",
        granularity="M1",
        source="live",
        now=now,
        quality=QualitySettings(),
    )


def test_one_bar_at_a_time_equals_one_batch_and_repeats_change_nothing(tmp_path: Path) -> None:
    batch, single = Lake(tmp_path / "batch"), Lake(tmp_path / "single")
    raw = _bars(5)
    _append(batch, raw)
    for i in range(5):
        _append(single, raw.slice(i, 1))
    _append(single, raw.slice(4, 1))  # a live loop that crashed and appends its last bar again
    columns = ["ts", "open", "high", "low", "close", "volume", "source"]
    assert (
        single.read("bronze.candles")
        .sort("ts")
        .select(columns)
        .equals(batch.read("bronze.candles").sort("ts").select(columns))
    )
    assert single.read("bronze.candles").height == 5


def test_a_bad_bar_is_quarantined_and_nothing_is_lost(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    raw = _bars(3).with_columns(high=pl.Series(["4702", "4690", "4702"]))  # high below low on the second
    result = _append(lake, raw)
    assert result.accepted.height + result.quarantined.height == result.input_rows == 3
    assert result.reasons == {"high_below_low": 1}
    assert lake.read("bronze.candles").height == 2
    assert lake.read("bronze.quarantine")["reasons"].to_list() == [["high_below_low"]]
