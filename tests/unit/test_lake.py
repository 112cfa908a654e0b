from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from spxcast.errors import LakeError, SchemaError
from spxcast.lake import Lake, frame_checksum
from spxcast.lake.tables import CANDLES, UTC_TS


def candles(n: int, start: datetime = datetime(2024, 1, 2, tzinfo=UTC), price: float = 100.0) -> pl.DataFrame:
    ts = [start + timedelta(minutes=i) for i in range(n)]
    return pl.DataFrame(
        {
            "instrument": ["SPX500_USD"] * n,
            "granularity": ["M1"] * n,
            "ts": pl.Series(ts, dtype=UTC_TS),
            "open": [price] * n,
            "high": [price + 1] * n,
            "low": [price - 1] * n,
            "close": [price + 0.5] * n,
            "volume": [10] * n,
            "bid_close": [None] * n,
            "ask_close": [None] * n,
            "source": ["test"] * n,
            "ingested_at": pl.Series([datetime(2024, 6, 1, tzinfo=UTC)] * n, dtype=UTC_TS),
        },
        schema_overrides={"bid_close": pl.Float64, "ask_close": pl.Float64},
    )


def test_merge_is_idempotent_and_updates_only_changed_rows(tmp_path) -> None:
    lake = Lake(tmp_path)
    first = candles(100)
    v0 = lake.write("bronze.candles", first)
    table = lake.read("bronze.candles")
    checksum = frame_checksum(table, CANDLES.key)

    again = first.with_columns(ingested_at=pl.lit(datetime(2025, 1, 1, tzinfo=UTC)).cast(UTC_TS))
    lake.write("bronze.candles", again)
    after = lake.read("bronze.candles")
    assert after.height == 100
    assert frame_checksum(after, CANDLES.key) == checksum, "re-ingesting identical data must change nothing"

    corrected = first.head(3).with_columns(close=pl.lit(200.0))
    overlapping = pl.concat([corrected, candles(10, start=datetime(2024, 1, 2, 1, 40, tzinfo=UTC))])
    v2 = lake.write("bronze.candles", overlapping)
    final = lake.read("bronze.candles").sort("ts")
    assert final.height == 110
    assert final["close"].head(3).to_list() == [200.0] * 3
    assert final["close"][3] == 100.5
    assert v2 > v0
    assert lake.read("bronze.candles", version=v0).height == 100, "time travel to the first version"


def test_compaction_leaves_few_files_and_the_same_rows(tmp_path) -> None:
    lake = Lake(tmp_path)
    start = datetime(2024, 1, 2, tzinfo=UTC)
    for i in range(12):  # a row at a time, as the live loop merges
        lake.write("bronze.candles", candles(1, start=start + timedelta(minutes=i)))
    before = lake.read("bronze.candles").sort("ts")
    version = lake.version("bronze.candles")
    assert lake.files("bronze.candles") == 12
    metrics = lake.compact("bronze.candles")
    assert metrics["numFilesRemoved"] == 12 and lake.files("bronze.candles") == 1
    assert lake.read("bronze.candles").sort("ts").equals(before), "the same rows"
    assert lake.read("bronze.candles", version=version).sort("ts").equals(before), "older versions still read"
    lake.write("bronze.candles", candles(1, start=start + timedelta(minutes=20)))  # merges go on
    assert lake.read("bronze.candles").height == 13


def test_duplicate_keys_in_one_write_keep_the_last(tmp_path) -> None:
    lake = Lake(tmp_path)
    frame = pl.concat([candles(5), candles(5, price=300.0)])
    lake.write("bronze.candles", frame)
    table = lake.read("bronze.candles")
    assert table.height == 5
    assert set(table["open"].to_list()) == {300.0}


def test_schema_is_enforced(tmp_path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(SchemaError, match="missing columns"):
        lake.write("bronze.candles", candles(3).drop("volume"))
    with pytest.raises(SchemaError, match="unexpected columns"):
        lake.write("bronze.candles", candles(3).with_columns(extra=pl.lit(1)))
    with pytest.raises(SchemaError, match="wrong column types"):
        lake.write("bronze.candles", candles(3).with_columns(pl.col("volume").cast(pl.Float64)))
    with pytest.raises(SchemaError, match="null values"):
        lake.write("bronze.candles", candles(3).with_columns(close=pl.lit(None, dtype=pl.Float64)))
    assert not lake.exists("bronze.candles")


def test_unknown_table_and_missing_table_are_clear_errors(tmp_path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(LakeError, match="unknown lake table"):
        lake.path("bronze.nope")
    with pytest.raises(LakeError, match="does not exist yet"):
        lake.scan("bronze.candles")
    assert lake.version("bronze.candles") is None


def test_derived_tables_overwrite_atomically(tmp_path) -> None:
    lake = Lake(tmp_path)
    base = candles(10).select("instrument", "granularity", "ts")
    v0 = lake.write("silver.returns", base.with_columns(ret=pl.lit(1.0)))
    v1 = lake.write("silver.returns", base.head(4).with_columns(ret=pl.lit(2.0), other=pl.lit(3.0)))
    assert v1 == v0 + 1
    now = lake.read("silver.returns")
    assert now.height == 4 and now.columns[-2:] == ["ret", "other"]
    assert lake.read("silver.returns", version=v0).height == 10


def test_derived_overwrite_round_trips_values_and_dtypes_exactly(tmp_path) -> None:
    lake = Lake(tmp_path)
    frame = (
        candles(50)
        .select("instrument", "granularity", "ts")
        .with_columns(
            f32=pl.Series([None, *[i / 7 for i in range(49)]], dtype=pl.Float32),
            f64=pl.Series([i * 1e-9 for i in range(50)], dtype=pl.Float64),
            flag=pl.Series([i % 3 == 0 for i in range(50)]),
            n=pl.Series(range(50), dtype=pl.Int32),
        )
    )
    lake.write("gold.features", frame)
    back = lake.read("gold.features")
    assert back.schema == frame.schema
    assert back.equals(frame)


def test_a_failed_derived_overwrite_keeps_the_old_version_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    import deltalake.transaction

    lake = Lake(tmp_path)
    base = candles(10).select("instrument", "granularity", "ts").with_columns(ret=pl.lit(1.0))
    version = lake.write("silver.returns", base)
    files = sorted((tmp_path / "silver" / "returns").glob("*.parquet"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(deltalake.transaction, "create_table_with_add_actions", refuse)
    with pytest.raises(LakeError, match=r"cannot overwrite lake table silver\.returns: disk full"):
        lake.write("silver.returns", base.with_columns(ret=pl.lit(2.0)))
    assert lake.version("silver.returns") == version
    assert lake.read("silver.returns")["ret"].to_list() == [1.0] * 10
    assert sorted((tmp_path / "silver" / "returns").glob("*.parquet")) == files


def test_checksum_is_order_independent_and_content_sensitive() -> None:
    frame = candles(20)
    assert frame_checksum(frame, CANDLES.key) == frame_checksum(frame.reverse(), CANDLES.key)
    assert frame_checksum(frame, CANDLES.key) != frame_checksum(
        frame.with_columns(close=pl.col("close") + 1e-9), CANDLES.key
    )


def test_an_empty_write_creates_nothing_and_reports_the_current_version(tmp_path) -> None:
    lake = Lake(tmp_path)
    assert lake.write("bronze.candles", candles(3).head(0)) is None
    assert not lake.exists("bronze.candles")
    version = lake.write("bronze.candles", candles(3))
    assert lake.write("bronze.candles", candles(3).head(0)) == version
