"""The integer time of the lake and the calendars: microseconds since 1970-01-01 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl

from spxcast.lake.tables import UTC_TS, epoch_us
from spxcast.timeutil import from_epoch_us, to_epoch_us


def test_epoch_microseconds_agree_with_the_lake_and_round_trip() -> None:
    moments = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2024, 2, 29, 14, 30, 0, 123_456, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
    ]
    lake = epoch_us(pl.Series("ts", moments, dtype=UTC_TS)).tolist()
    assert [to_epoch_us(m) for m in moments] == lake
    assert [from_epoch_us(v) for v in lake] == moments


def test_naive_is_utc_and_other_offsets_are_the_same_instant() -> None:
    aware = datetime(2024, 1, 5, 21, 0, tzinfo=UTC)
    assert to_epoch_us(aware.replace(tzinfo=None)) == to_epoch_us(aware)
    new_york = aware.astimezone(timezone(timedelta(hours=-5)))
    assert to_epoch_us(new_york) == to_epoch_us(aware) == 1_704_488_400_000_000
