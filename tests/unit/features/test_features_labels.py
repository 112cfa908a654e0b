"""Labels are found by time: null exactly where the horizon reaches into a gap, exact values elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from spxcast.errors import ConfigError
from spxcast.features.labels import label_schema, make_labels
from spxcast.lake.tables import UTC_TS

H = 30


def _bars(minutes: list[int], instrument: str = "SPX500_USD") -> pl.DataFrame:
    """Bars starting at 10:00 + m minutes for each m; close = 1000 + 3 m + m^2/100 (distinct per bar)."""
    base = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    return pl.DataFrame(
        {
            "instrument": instrument,
            "granularity": "M1",
            "ts": [base + timedelta(minutes=m) for m in minutes],
            "close": [1000 + 3 * m + m * m / 100 for m in minutes],
        },
        schema_overrides={"ts": UTC_TS},
    )


def _close(m: int) -> float:
    return 1000 + 3 * m + m * m / 100


def test_labels_are_null_exactly_where_the_horizon_crosses_a_gap() -> None:
    minutes = [*range(0, 60), *range(120, 180)]  # a halt from 11:00 to 12:00
    labels = make_labels(_bars(minutes), H, 0.0)
    assert labels.schema == {"instrument": pl.Utf8, "granularity": pl.Utf8, "ts": UTC_TS, **label_schema(H)}
    by_minute = dict(zip(minutes, labels.iter_rows(named=True), strict=True))
    for m, row in by_minute.items():
        has_future = (m + H) in minutes
        assert row["label_ok"] is has_future, m
        if has_future:
            expected = 100 * (_close(m + H) / _close(m) - 1)
            assert row[f"target_ret_{H}m_pct"] == pytest.approx(expected, rel=1e-12), m
            assert row[f"target_dir_{H}m"] == 1
        else:
            assert row[f"target_ret_{H}m_pct"] is None
            assert row[f"target_dir_{H}m"] is None
    # 10:30..10:59 reach into the halt, 12:30..12:59 past the data.
    assert [m for m, r in by_minute.items() if not r["label_ok"]] == [*range(30, 60), *range(150, 180)]


def test_tolerance_prefers_the_earlier_bar_then_the_later_one() -> None:
    minutes = [m for m in range(0, 80) if m not in (45, 61, 62)]
    exact = make_labels(_bars(minutes), H, 0.0)
    tolerant = make_labels(_bars(minutes), H, 1.0)

    def ret(frame: pl.DataFrame, m: int) -> float | None:
        return frame.filter(pl.col("ts").dt.minute() == m % 60, pl.col("ts").dt.hour() == 10 + m // 60)[
            f"target_ret_{H}m_pct"
        ][0]

    assert ret(exact, 15) is None  # the bar at 10:45 is missing
    assert ret(tolerant, 15) == pytest.approx(100 * (_close(44) / _close(15) - 1))  # backward first
    assert ret(tolerant, 32) == pytest.approx(
        100 * (_close(63) / _close(32) - 1)
    )  # 62 and 61 absent: forward
    assert ret(tolerant, 31) == pytest.approx(100 * (_close(60) / _close(31) - 1))  # 61 absent: backward 60
    assert ret(tolerant, 20) == pytest.approx(100 * (_close(50) / _close(20) - 1))  # exact match kept


def test_series_do_not_borrow_each_others_bars() -> None:
    a = _bars(list(range(0, 20)), "A")
    b = _bars(list(range(0, 60)), "B")
    labels = make_labels(pl.concat([b, a]), H, 0.0)
    assert labels.filter(pl.col("instrument") == "A")["label_ok"].sum() == 0
    assert labels.filter(pl.col("instrument") == "B")["label_ok"].sum() == 30


def test_direction_is_the_sign_of_the_return() -> None:
    bars = _bars(list(range(0, 40))).with_columns(
        pl.Series("close", [100.0] * 10 + [90.0] * 10 + [100.0] * 20)
    )
    labels = make_labels(bars, 10, 0.0)
    directions = labels[f"target_dir_{10}m"].to_list()
    assert directions[:10] == [-1] * 10
    assert directions[10:20] == [1] * 10
    assert directions[20:30] == [0] * 10
    assert directions[30:] == [None] * 10


def test_tolerance_must_stay_below_the_horizon() -> None:
    with pytest.raises(ConfigError, match="below the horizon"):
        make_labels(_bars([0, 1]), H, 30.0)
