from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from spxcast.lake.tables import UTC_TS
from spxcast.quality import candle_health, quarantine_counts
from spxcast.sources.market.calendar import trading_minutes_before


def series(stamps: list[datetime], granularity: str = "M1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "instrument": ["SPX500_USD"] * len(stamps),
            "granularity": [granularity] * len(stamps),
            "ts": pl.Series(stamps, dtype=UTC_TS),
        }
    )


def minutes(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(count)]


def test_scheduled_closures_are_not_gaps() -> None:
    thursday = datetime(2024, 1, 4, 20, 55, tzinfo=UTC)
    stamps = minutes(thursday, 5) + minutes(datetime(2024, 1, 4, 22, tzinfo=UTC), 5)
    stamps += minutes(datetime(2024, 1, 5, 20, 58, tzinfo=UTC), 2) + minutes(
        datetime(2024, 1, 7, 22, tzinfo=UTC), 3
    )
    report = candle_health(series(stamps), "SPX500_USD", "M1")
    assert report.scheduled == {"daily_break": 1, "weekend": 1}
    unscheduled = {k: v for k, v in report.gaps.items() if v["count"]}
    assert unscheduled == {">240 bars": {"count": 1, "missing_bars": 1373}}, (
        "Thursday 22:05 to Friday 20:58 is missing"
    )


def test_gaps_are_bucketed_by_missing_bars() -> None:
    base = datetime(2024, 1, 3, 1, tzinfo=UTC)
    stamps = [base, base + timedelta(minutes=2), base + timedelta(minutes=6), base + timedelta(minutes=40)]
    report = candle_health(series(stamps), "SPX500_USD", "M1", {"nan_price": 3})
    assert report.gaps["1 bar"] == {"count": 1, "missing_bars": 1}
    assert report.gaps["2-5 bars"] == {"count": 1, "missing_bars": 3}
    assert report.gaps["31-240 bars"] == {"count": 1, "missing_bars": 33}
    assert report.rows == 4
    assert report.expected_bars == 41
    assert report.quarantine == {"nan_price": 3}
    assert report.to_dict()["first_ts"] == base.isoformat()


def test_duplicates_other_series_and_empty() -> None:
    base = datetime(2024, 1, 3, 1, tzinfo=UTC)
    frame = pl.concat([series([base, base]), series([base], granularity="M5")])
    report = candle_health(frame, "SPX500_USD", "M1")
    assert report.duplicate_keys == 1
    assert report.rows == 1
    empty = candle_health(frame, "EUR_USD", "M1")
    assert empty.rows == 0
    assert empty.first_ts is None


def test_trading_minutes_per_week() -> None:
    sunday = datetime(2024, 1, 7, 22, tzinfo=UTC)
    from spxcast.sources.market.calendar import minutes_since_anchor

    week = trading_minutes_before([minutes_since_anchor(sunday + timedelta(days=7))])[0]
    assert week - trading_minutes_before([minutes_since_anchor(sunday)])[0] == 5 * 23 * 60


def test_quarantine_counts_by_reason() -> None:
    frame = pl.DataFrame(
        {"table": ["bronze.candles", "bronze.candles", "bronze.news"], "reasons": [["a", "b"], ["a"], ["c"]]}
    )
    assert quarantine_counts(frame) == {"a": 2, "b": 1}
