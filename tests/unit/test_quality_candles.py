from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spxcast.config import QualitySettings
from spxcast.errors import ConfigError, SchemaError
from spxcast.lake.tables import CANDLES, QUARANTINE, UTC_TS
from spxcast.quality import validate_candles

NOW = datetime(2024, 6, 1, tzinfo=UTC)
QUALITY = QualitySettings()


def check(raw: pl.DataFrame, granularity: str = "M1", timezone: str = "UTC", now: datetime = NOW):
    result = validate_candles(
        raw,
        instrument="SPX500_USD",
        granularity=granularity,
        source="test",
        now=now,
        quality=QUALITY,
        timezone=timezone,
    )
    assert result.accepted.height + result.quarantined.height == raw.height
    assert result.input_rows == raw.height
    assert dict(result.accepted.schema) == CANDLES.schema
    assert dict(result.quarantined.schema) == QUARANTINE.schema
    return result


def reasons_by_ts(result) -> dict[str, list[str]]:
    return {
        json.loads(raw)["ts"]: reasons
        for raw, reasons in result.quarantined.select("raw", "reasons").iter_rows()
    }


def row(
    ts: object, o: object = "100", h: object = "101", lo: object = "99", c: object = "100.5", v: object = "10"
):
    return {"ts": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v}


def test_each_bad_row_gets_the_right_reason() -> None:
    rows = [
        row("2024-01-02T10:00:00Z"),
        row("2024-01-02T10:01:00Z", o="nan"),
        row("2024-01-02T10:02:00Z", c="-5"),
        row("2024-01-02T10:03:00Z", h="98"),
        row("2024-01-02T10:04:00Z", o="102"),
        row("2024-01-02T10:05:00Z", c="98.5"),
        row("2024-01-02T10:06:00Z", v="-1"),
        row("2024-01-02T10:07:00Z", lo="abc"),
        row("2024-01-02T10:08:00Z", h=None),
        row("2024-01-02T10:09:30Z"),
        row("2030-01-01T00:00:00Z"),
        row("not a time"),
        row("2024-01-02T10:10:00Z", v="1.5"),
        row("2024-01-02T10:11:00Z", o="inf"),
        row("2024-01-02T10:12:00Z", v="1e30"),
        row("0001-01-01T00:00:00Z"),
    ]
    result = check(pl.DataFrame(rows))
    assert result.accepted["ts"].to_list() == [datetime(2024, 1, 2, 10, 0, tzinfo=UTC)]
    found = reasons_by_ts(result)
    assert found == {
        "2024-01-02T10:01:00Z": ["nan_price"],
        "2024-01-02T10:02:00Z": ["non_positive_price"],
        "2024-01-02T10:03:00Z": ["high_below_low"],
        "2024-01-02T10:04:00Z": ["open_outside_range"],
        "2024-01-02T10:05:00Z": ["close_outside_range"],
        "2024-01-02T10:06:00Z": ["negative_volume"],
        "2024-01-02T10:07:00Z": ["non_numeric_price"],
        "2024-01-02T10:08:00Z": ["missing_price"],
        "2024-01-02T10:09:30Z": ["misaligned_timestamp"],
        "2030-01-01T00:00:00Z": ["future_timestamp"],
        "not a time": ["unparseable_timestamp"],
        "2024-01-02T10:10:00Z": ["non_numeric_volume"],
        "2024-01-02T10:11:00Z": ["nan_price"],
        "2024-01-02T10:12:00Z": ["non_numeric_volume"],
        "0001-01-01T00:00:00Z": ["timestamp_out_of_range"],
    }
    assert result.reasons["nan_price"] == 2


def test_missing_timestamp_and_incomplete_and_unreadable_records() -> None:
    raw = pl.DataFrame(
        [
            {**row(None), "complete": "true", "record_error": None},
            {**row("2024-01-02T10:00:00Z"), "complete": "false", "record_error": None},
            {**row("2024-01-02T10:01:00Z"), "complete": None, "record_error": "invalid JSON"},
            {**row("2024-01-02T10:02:00Z"), "complete": "True", "record_error": None},
        ]
    )
    result = check(raw)
    assert result.accepted.height == 1
    assert sorted(r for reasons in result.quarantined["reasons"].to_list() for r in reasons) == [
        "incomplete_candle",
        "missing_timestamp",
        "unparseable_record",
    ]


def test_duplicates_identical_keep_one_conflicting_keep_none() -> None:
    same = row("2024-01-02T10:00:00Z")
    conflicting = [row("2024-01-02T10:01:00Z"), row("2024-01-02T10:01:00Z", c="100.7")]
    result = check(pl.DataFrame([same, same, same, *conflicting, row("2024-01-02T10:02:00Z")]))
    assert result.accepted["ts"].to_list() == [
        datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
        datetime(2024, 1, 2, 10, 2, tzinfo=UTC),
    ]
    assert result.reasons == {"duplicate_key": 2, "conflicting_duplicate": 2}
    assert result.quarantined["record_hash"].n_unique() == 4, (
        "identical rejected copies stay distinct records"
    )


def test_unordered_input_is_sorted_not_rejected() -> None:
    stamps = ["2024-01-02T10:03:00Z", "2024-01-02T10:00:00Z", "2024-01-02T10:02:00Z", "2024-01-02T10:01:00Z"]
    result = check(pl.DataFrame([row(t) for t in stamps]))
    assert result.quarantined.height == 0
    assert result.accepted["ts"].is_sorted()


def test_timezones_are_normalised_to_utc() -> None:
    raw = pl.DataFrame(
        [
            row("2024-01-02T11:00:00+01:00"),
            row("2024-01-02 05:01:00"),
            row("1704189720"),
            row("2024-01-02T10:03:00Z"),
        ]
    )
    result = check(raw, timezone="America/New_York")
    assert result.accepted["ts"].to_list() == [
        datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
        datetime(2024, 1, 2, 10, 1, tzinfo=UTC),
        datetime(2024, 1, 2, 10, 2, tzinfo=UTC),
        datetime(2024, 1, 2, 10, 3, tzinfo=UTC),
    ]
    assert result.normalised_to_utc == 2
    with pytest.raises(ConfigError, match="IANA"):
        check(raw, timezone="Mars/Olympus")


def test_typed_input_naive_and_aware_datetimes() -> None:
    base = datetime(2024, 1, 2, 10, 0, tzinfo=UTC).replace(tzinfo=None)
    naive = pl.DataFrame(
        {
            "ts": [base + timedelta(minutes=i) for i in range(3)],
            "open": [100.0] * 3,
            "high": [101.0] * 3,
            "low": [99.0] * 3,
            "close": [100.0] * 3,
            "volume": [1, 2, 3],
        }
    )
    result = check(naive, timezone="Europe/Berlin")
    assert result.accepted["ts"][0] == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    aware = naive.with_columns(pl.col("ts").dt.replace_time_zone("Asia/Tokyo"))
    assert check(aware).accepted["ts"][0] == datetime(2024, 1, 2, 1, 0, tzinfo=UTC)


def test_wrong_types_and_empty_input_do_not_crash() -> None:
    wrong = pl.DataFrame(
        {"ts": [True, False], "open": [True, False], "high": [1, 2], "low": [1, 1], "close": [1, 2]}
    )
    result = check(wrong)
    assert result.accepted.height == 0
    assert all("unparseable_timestamp" in r for r in result.quarantined["reasons"].to_list())
    empty = pl.DataFrame(schema={c: pl.Utf8 for c in ("ts", "open", "high", "low", "close", "volume")})
    assert check(empty).accepted.height == 0
    with pytest.raises(SchemaError, match="missing columns"):
        check(pl.DataFrame({"time": ["2024-01-02"], "open": ["1"]}))


def test_alignment_for_coarse_granularities() -> None:
    raw = pl.DataFrame(
        [row("2024-01-02T10:05:00Z"), row("2024-01-02T10:07:00Z"), row("2024-01-02T21:00:00Z")]
    )
    assert check(raw, granularity="M5").reasons == {"misaligned_timestamp": 1}
    daily = pl.DataFrame([row("2024-01-01T22:00:00Z"), row("2024-01-02T21:30:00Z")])
    assert check(daily, granularity="D").reasons == {"misaligned_timestamp": 1}


def test_future_tolerance_uses_the_bar_close() -> None:
    now = datetime(2024, 1, 2, 10, 5, 30, tzinfo=UTC)
    raw = pl.DataFrame(
        [row("2024-01-02T10:04:00Z"), row("2024-01-02T10:05:00Z"), row("2024-01-02T10:08:00Z")]
    )
    result = check(raw, now=now)
    assert result.reasons == {"future_timestamp": 1}, (
        "120 s skew tolerated; a bar closing 3.5 min ahead is not"
    )


_cell = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(min_value=90, max_value=110).map(lambda x: f"{x:.2f}"),
    st.text(max_size=6),
    st.integers(-5, 200).map(str),
    st.sampled_from(["1e30", "-0", "1e300", "0x10", " 101 ", "1_000", "NaN", "-inf"]),
)
_stamp = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(0, 50).map(
        lambda m: (datetime(2024, 1, 2, 10, tzinfo=UTC) + timedelta(minutes=m)).isoformat()
    ),
    st.integers(0, 3000).map(
        lambda s: (datetime(2024, 1, 2, 10, tzinfo=UTC) + timedelta(seconds=s)).isoformat()[:19]
    ),
    st.integers(1_700_000_000, 1_800_000_000).map(str),
    st.sampled_from(
        ["9.2e21", "-1e300", "0001-01-01T00:00:00Z", "9999-12-31T23:59:00Z", "2024-02-30T10:00:00Z"]
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {"ts": _stamp, "open": _cell, "high": _cell, "low": _cell, "close": _cell, "volume": _cell}
        ),
        max_size=40,
    )
)
def test_property_every_row_is_accepted_or_quarantined(rows: list[dict[str, str | None]]) -> None:
    raw = pl.DataFrame(rows, schema={k: pl.Utf8 for k in ("ts", "open", "high", "low", "close", "volume")})
    result = check(raw)
    accepted = result.accepted
    assert accepted["ts"].n_unique() == accepted.height
    assert accepted["ts"].is_sorted()
    assert (accepted["low"] > 0).all()
    assert (accepted["low"] <= accepted[["open", "close"]].min_horizontal()).all()
    assert (accepted["high"] >= accepted[["open", "close"]].max_horizontal()).all()
    assert (accepted["volume"] >= 0).all()
    assert (accepted["ts"] + timedelta(minutes=1) <= NOW + timedelta(seconds=QUALITY.max_future_skew_s)).all()
    assert all(len(r) > 0 for r in result.quarantined["reasons"].to_list())
    assert sum(result.reasons.values()) >= result.quarantined.height
    assert accepted["ts"].dtype == UTC_TS


_DEFECTS: dict[str, dict[str, str | None]] = {
    "nan_price": {"open": "NaN"},
    "non_positive_price": {"low": "0"},
    "non_numeric_price": {"close": "12,5"},
    "missing_price": {"high": None},
    "high_below_low": {"high": "98", "low": "99"},
    "open_outside_range": {"open": "101.5"},
    "close_outside_range": {"close": "98.9"},
    "negative_volume": {"volume": "-7"},
    "non_numeric_volume": {"volume": "many"},
    "misaligned_timestamp": {"ts": "2024-01-02T10:00:30Z"},
    "unparseable_timestamp": {"ts": "yesterday"},
    "missing_timestamp": {"ts": None},
}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from([None, *_DEFECTS]), min_size=1, max_size=30), st.randoms(use_true_random=False)
)
def test_property_each_injected_defect_gets_exactly_its_reason(defects: list[str | None], rnd) -> None:
    rows = []
    for i, defect in enumerate(defects):
        good = row((datetime(2024, 1, 2, 12, tzinfo=UTC) + timedelta(minutes=i)).isoformat())
        rows.append({**good, **(_DEFECTS[defect] if defect else {}), "_id": str(i)})
    rnd.shuffle(rows)
    result = check(pl.DataFrame(rows))
    got = {
        json.loads(raw)["_id"]: reasons
        for raw, reasons in result.quarantined.select("raw", "reasons").iter_rows()
    }
    expected = {str(i): [d] for i, d in enumerate(defects) if d}
    assert got == expected
    assert result.accepted.height == defects.count(None)
    assert result.accepted["ts"].is_sorted(), "shuffled input comes out sorted"
