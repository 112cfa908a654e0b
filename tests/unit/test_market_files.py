from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from spxcast.config import FilesSourceSettings, Settings
from spxcast.errors import ConfigError, SchemaError, SourceError
from spxcast.ingest.market import ingest_market
from spxcast.lake import Lake
from spxcast.sources.market.files import FileCandleSource, parse_column_map

NOW = datetime(2024, 6, 1, tzinfo=UTC)
BASE = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def oanda_line(i: int, complete: bool = True) -> str:
    ts = (BASE + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    price = 4700 + i
    mid = {"o": f"{price:.1f}", "h": f"{price + 2:.1f}", "l": f"{price - 1:.1f}", "c": f"{price + 1:.1f}"}
    return json.dumps(
        {
            "complete": complete,
            "volume": 10 + i,
            "time": ts,
            "mid": mid,
            "bid": {"c": f"{price + 0.8:.1f}"},
            "ask": {"c": f"{price + 1.2:.1f}"},
        }
    )


def ingest_file(settings: Settings, path: Path, **kwargs):
    lake = Lake.from_settings(settings)
    return ingest_market(settings, lake, source="files", file=path, now=NOW, **kwargs), lake


def test_oanda_ndjson_dump_with_bad_lines(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "candles.ndjson"
    lines = [oanda_line(i) for i in range(6)] + ["", "{not json", oanda_line(6, complete=False), "[1, 2]"]
    path.write_text("\n".join(lines) + "\n")
    report, lake = ingest_file(settings, path)
    assert report.input_rows == 9, "blank lines are not records"
    assert report.accepted_rows == 6
    assert report.quarantined_rows == 3
    assert report.reasons == {"unparseable_record": 2, "incomplete_candle": 1}
    candles = lake.read("bronze.candles").sort("ts")
    assert candles["open"].to_list() == [4700.0 + i for i in range(6)]
    assert candles["bid_close"][0] == pytest.approx(4700.8)
    assert candles["volume"].to_list() == [10, 11, 12, 13, 14, 15]
    quarantine = lake.read("bronze.quarantine")
    assert any("{not json" in raw for raw in quarantine["raw"].to_list()), "the original line is kept"


def test_clean_oanda_ndjson_uses_the_fast_path(tmp_path: Path) -> None:
    path = tmp_path / "candles.jsonl"
    path.write_text("\n".join(oanda_line(i) for i in range(50)))
    frames = list(FileCandleSource(FilesSourceSettings(batch_rows=20), path).fetch("X", "M1", None, None))
    assert [f.height for f in frames] == [20, 20, 10]
    assert {"ts", "open", "high", "low", "close", "volume", "bid_close", "ask_close", "complete"} <= set(
        frames[0].columns
    )


def test_csv_with_mapping_and_naive_local_times(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Date Time,Open,High,Low,Last,Ticks\n"
        "2024-01-02 09:31:00,4701,4703,4700,4702,5\n"
        "2024-01-02 09:30:00,4700,4702,4699,4701,7\n"
        "2024-01-02 09:32:00,oops,4703,4700,4702,5\n"
    )
    settings.market.files.columns = parse_column_map(["ts=Date Time", "close=Last"])
    settings.market.files.timezone = "America/New_York"
    report, lake = ingest_file(settings, path)
    assert (report.accepted_rows, report.quarantined_rows) == (2, 1)
    assert report.reasons == {"non_numeric_price": 1}
    assert lake.read("bronze.candles").sort("ts")["ts"].to_list() == [BASE, BASE + timedelta(minutes=1)]
    assert report.normalised_to_utc == 3


def test_parquet_generic_ohlcv(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    n = 30
    pl.DataFrame(
        {
            "timestamp": [BASE + timedelta(minutes=5 * i) for i in range(n)],
            "o": [100.0] * n,
            "h": [101.0] * n,
            "l": [99.0] * n,
            "c": [100.5] * n,
            "vol": list(range(n)),
        }
    ).write_parquet(path, row_group_size=10)
    settings.market.files.batch_rows = 10
    settings.granularity = "M5"
    report, lake = ingest_file(settings, path)
    assert report.chunks == 3
    assert report.accepted_rows == n
    stored = lake.read("bronze.candles")
    assert stored["granularity"].unique().to_list() == ["M5"]
    assert stored["bid_close"].null_count() == n


def test_csv_lines_with_more_fields_than_the_header_are_quarantined_not_truncated(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "ts,open,high,low,close,volume\n"
        "2024-01-02T14:30:00Z,4700,4702,4699,4701,7\n"
        "2024-01-02T14:31:00Z,4701,4703,4700,4702,5,shifted\n"
        "2024-01-02T14:32:00Z,4702,4704,4701,4703,6\n"
    )
    report, lake = ingest_file(settings, path)
    assert (report.input_rows, report.accepted_rows, report.quarantined_rows) == (3, 2, 1)
    assert report.reasons == {"unparseable_record": 1}
    quarantine = lake.read("bronze.quarantine")
    assert any("shifted" in raw for raw in quarantine["raw"].to_list()), "the surplus field is kept"


def test_empty_files_import_nothing(settings: Settings, tmp_path: Path) -> None:
    for name, text in (
        ("empty.csv", ""),
        ("header.csv", "ts,open,high,low,close\n"),
        ("empty.ndjson", "\n\n"),
    ):
        path = tmp_path / name
        path.write_text(text)
        report, lake = ingest_file(settings, path)
        assert report.input_rows == 0
        assert not lake.exists("bronze.candles")


def test_clear_errors_for_bad_files_and_mappings(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        ingest_file(settings, tmp_path / "missing.csv")
    odd = tmp_path / "candles.xlsx"
    odd.write_text("x")
    with pytest.raises(ConfigError, match="--format"):
        ingest_file(settings, odd)
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(SourceError, match="Parquet"):
        ingest_file(settings, broken)
    csv = tmp_path / "ok.csv"
    csv.write_text("when,open,high,low,close\n2024-01-02T10:00:00Z,1,2,1,1\n")
    with pytest.raises(SchemaError, match="missing columns"):
        ingest_file(settings, csv)
    settings.market.files.columns = {"ts": "nope"}
    with pytest.raises(SchemaError, match="not in the file"):
        ingest_file(settings, csv)
    with pytest.raises(ConfigError, match="bronze_column=file_column"):
        parse_column_map(["ts"])
    settings.market.files.columns = {"when": "when"}
    with pytest.raises(ConfigError, match="unknown candle columns"):
        ingest_file(settings, csv)
    with pytest.raises(ConfigError, match="whole file"):
        ingest_market(settings, Lake.from_settings(settings), source="files", file=csv, start="2024-01-01")


def test_csv_is_streamed_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    stamps = [(BASE + timedelta(minutes=i)).isoformat() for i in range(95)]
    path.write_text("ts,open,high,low,close\n" + "".join(f"{t},1,2,1,1\n" for t in stamps))
    frames = list(FileCandleSource(FilesSourceSettings(batch_rows=20), path).fetch("X", "M1", None, None))
    assert [f.height for f in frames] == [20, 20, 20, 20, 15]
    assert pl.concat(frames)["ts"].to_list() == stamps


def test_quarantine_is_kept_per_series_and_not_duplicated_on_rerun(
    settings: Settings, tmp_path: Path
) -> None:
    from spxcast.ingest.market import stored_health

    path = tmp_path / "bad.csv"
    path.write_text("ts,open,high,low,close\n2024-01-02T10:00:00Z,x,1,1,1\n2024-01-02T10:00:00Z,x,1,1,1\n")
    _, lake = ingest_file(settings, path)
    ingest_file(settings, path)
    settings.instrument = "NAS100_USD"
    ingest_file(settings, path)
    quarantine = lake.read("bronze.quarantine")
    assert quarantine.height == 4, "two identical bad rows per series, nothing added by the rerun"
    assert sorted(quarantine["source"].unique().to_list()) == ["files/NAS100_USD/M1", "files/SPX500_USD/M1"]
    assert stored_health(lake, "SPX500_USD", "M1").quarantined_records == 2
