"""Any bar size: supported granularities, trading calendars, labels N bars ahead, data health and purge.

Labels are checked by hand on Fridays, exchange holidays, weekends and genuinely missing bars.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from spxcast.cli.main import app
from spxcast.config import load_settings
from spxcast.errors import ConfigError
from spxcast.features.labels import label_names, make_labels
from spxcast.lake.tables import UTC_TS
from spxcast.models.splits import make_splits
from spxcast.quality import candle_health
from spxcast.sources.market.calendar import resolve_calendar_name, trading_calendar


def bars(instrument: str, granularity: str, stamps: list[datetime]) -> pl.DataFrame:
    """A bar frame whose close is 100 + the bar's index (so a label names the bar it reached)."""
    return pl.DataFrame(
        {
            "instrument": [instrument] * len(stamps),
            "granularity": [granularity] * len(stamps),
            "ts": pl.Series(stamps, dtype=UTC_TS),
            "close": [100.0 + i for i in range(len(stamps))],
        }
    )


def weekdays(start: date, end: date, closed: set[date] = frozenset()) -> list[date]:  # type: ignore[assignment]
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5 and d not in closed]


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def reached(labels: pl.DataFrame, frame: pl.DataFrame, column: str) -> dict[datetime, datetime | None]:
    """For each bar, the ts of the bar whose close its label used (from close = 100 + index)."""
    joined = frame.join(labels, on=["instrument", "granularity", "ts"])
    out: dict[datetime, datetime | None] = {}
    for ts, close, ret in joined.select("ts", "close", column).iter_rows():
        if ret is None:
            out[ts] = None
        else:
            index = round(close * (1 + ret / 100) - 100)
            out[ts] = frame["ts"][index]
    return out


# US exchange holidays of early 2024, written out by hand (the calendar library must agree).
NYSE_2024_HOLIDAYS = {date(2024, 1, 1), date(2024, 1, 15), date(2024, 2, 19), date(2024, 3, 29)}


def test_daily_index_labels_skip_weekends_and_exchange_holidays() -> None:
    days = weekdays(date(2024, 1, 2), date(2024, 4, 5), NYSE_2024_HOLIDAYS)
    days.remove(date(2024, 2, 7))  # a genuinely missing bar (no data that day)
    frame = bars("SPX", "D", [midnight(d) for d in days])
    labels = make_labels(frame, 1440, 0.0, horizon_bars=1, calendar="XNYS")
    ret, direction = label_names(1440, 1)
    assert (ret, direction) == ("target_ret_1b_pct", "target_dir_1b")
    to = reached(labels, frame, ret)
    at = midnight
    assert to[at(date(2024, 1, 5))] == at(date(2024, 1, 8)), "Friday -> Monday"
    assert to[at(date(2024, 1, 12))] == at(date(2024, 1, 16)), (
        "Friday -> Tuesday after Martin Luther King Day"
    )
    assert to[at(date(2024, 2, 16))] == at(date(2024, 2, 20)), "Friday -> Tuesday after Presidents' Day"
    assert to[at(date(2024, 3, 28))] == at(date(2024, 4, 1)), "Thursday -> Monday after Good Friday"
    assert to[at(date(2024, 1, 9))] == at(date(2024, 1, 10)), "Tuesday -> Wednesday"
    assert to[at(date(2024, 2, 6))] is None, "its next trading day is missing from the data: null"
    assert to[at(date(2024, 2, 8))] == at(date(2024, 2, 9))
    assert to[at(date(2024, 4, 5))] is None, "past the data"
    assert labels.filter(pl.col("ts") == at(date(2024, 2, 6)))["label_ok"].item() is False
    # Two bars ahead: Thursday -> Tuesday across the MLK weekend; the missing bar nulls only its own targets.
    two = reached(make_labels(frame, 2880, 0.0, horizon_bars=2, calendar="XNYS"), frame, "target_ret_2b_pct")
    assert two[at(date(2024, 1, 11))] == at(date(2024, 1, 16))
    assert two[at(date(2024, 2, 5))] is None and two[at(date(2024, 2, 6))] == at(date(2024, 2, 8))
    # The old wall-clock label at D lost every Friday (and every day before a holiday).
    by_time = reached(make_labels(frame, 1440, 0.0), frame, "target_ret_1440m_pct")
    assert by_time[at(date(2024, 1, 5))] is None
    fridays = [d for d in days[:-1] if d.weekday() == 4]
    assert all(to[at(d)] is not None for d in fridays)


def test_cfd_daily_bars_stamped_at_the_session_open_or_midnight_label_friday_to_monday() -> None:
    assert resolve_calendar_name("SPX500_USD") == "cfd"
    opens = [datetime(2024, 1, d, 22, tzinfo=UTC) for d in (7, 8, 9, 10, 11, 14, 15)]  # Sun-Thu 22:00
    to = reached(
        make_labels(bars("SPX500_USD", "D", opens), 1440, 0.0, 1),
        bars("SPX500_USD", "D", opens),
        "target_ret_1b_pct",
    )
    assert to[opens[4]] == opens[5], "Friday's session (opens Thursday 22:00) -> Monday's (opens Sunday)"
    mids = [datetime(2024, 1, d, tzinfo=UTC) for d in (8, 9, 10, 11, 12, 15)]  # Mon-Fri 00:00 UTC
    frame = bars("SPX500_USD", "D", mids)
    to = reached(make_labels(frame, 1440, 0.0, 1), frame, "target_ret_1b_pct")
    assert to[mids[4]] == mids[5], "Friday -> Monday"
    assert to[mids[0]] == mids[1]


def test_fx_hourly_labels_follow_the_new_york_close_across_weekends_and_dst() -> None:
    assert resolve_calendar_name("EUR_USD") == "fx"
    winter = [datetime(2024, 1, 5, h, tzinfo=UTC) for h in (19, 20, 21)] + [
        datetime(2024, 1, 7, 22, tzinfo=UTC),
        datetime(2024, 1, 7, 23, tzinfo=UTC),
        datetime(2024, 1, 8, 1, tzinfo=UTC),  # 00:00 is missing
    ]
    frame = bars("EUR_USD", "H1", winter)
    to = reached(make_labels(frame, 60, 0.0, horizon_bars=1), frame, "target_ret_1b_pct")
    assert to[winter[2]] == winter[3], (
        "Friday 21:00 UTC (16:00 New York) -> Sunday 22:00 UTC (17:00 New York)"
    )
    assert to[winter[1]] == winter[2]
    assert to[winter[4]] is None, "Monday 00:00 is genuinely missing"
    summer = [datetime(2024, 7, 5, 20, tzinfo=UTC), datetime(2024, 7, 7, 21, tzinfo=UTC)]
    frame = bars("EUR_USD", "H1", summer)
    to = reached(make_labels(frame, 60, 0.0, horizon_bars=1), frame, "target_ret_1b_pct")
    assert to[summer[0]] == summer[1], "daylight saving: the week opens at 21:00 UTC"
    # By time, the Friday bar's label would be null (no bar one hour later).
    by_time = reached(make_labels(frame, 60, 0.0), frame, "target_ret_60m_pct")
    assert by_time[summer[0]] is None


def test_unsupported_granularity_is_refused_with_the_supported_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"'M7' is not supported; use one of M1, M5, M15, M30, H1, H4, D"):
        load_settings(granularity="M7")
    for good in ("M1", "M5", "M15", "M30", "H1", "H4", "D"):
        assert load_settings(granularity=good).granularity == good
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "--granularity", "M7", "config", "show"])
    assert result.exit_code == 2
    assert "granularity 'M7' is not supported" in " ".join(result.output.split())


def test_horizon_in_bars_derives_minutes_and_refuses_a_contradiction() -> None:
    settings = load_settings(granularity="D", horizon_bars=1)
    assert (settings.horizon_minutes, settings.horizon_bars, settings.horizon_bar_count) == (1440, 1, 1)
    assert load_settings(granularity="H1", horizon_bars=4, horizon_minutes=240).horizon_minutes == 240
    with pytest.raises(ConfigError, match="not both"):
        load_settings(granularity="H1", horizon_bars=4, horizon_minutes=30)
    minutes = load_settings(granularity="M5", horizon_minutes=30)
    assert (minutes.horizon_bars, minutes.horizon_bar_count) == (None, 6)


def test_data_health_of_a_daily_index_and_hourly_fx() -> None:
    days = weekdays(date(2021, 1, 4), date(2024, 12, 31))
    sessions = trading_calendar("XNYS", midnight(days[0]), midnight(days[-1]))
    open_days = {datetime.fromtimestamp(o / 1e6, UTC).date() for o in sessions.opens}
    stored = [d for d in days if d in open_days]
    stored.remove(date(2023, 5, 10))
    frame = bars("SPX", "D", [midnight(d) for d in stored])
    report = candle_health(frame, "SPX", "D", calendar="XNYS")
    assert report.gaps["1 bar"] == {"count": 1, "missing_bars": 1}, "only the removed day is a gap"
    assert sum(g["count"] for g in report.gaps.values()) == 1
    assert report.expected_bars == len(stored) + 1
    assert report.coverage == pytest.approx(len(stored) / (len(stored) + 1))
    assert report.scheduled["weekend"] > 200 and report.scheduled["daily_break"] == 0
    # On the CFD calendar (weekends only) the same series shows each exchange holiday as a one-bar gap,
    # never one gap per day (the old report: ~990 one-bar gaps for four years of midnight stamps).
    cfd = candle_health(frame.with_columns(pl.lit("SPX500_USD").alias("instrument")), "SPX500_USD", "D")
    assert 30 < cfd.gaps["1 bar"]["count"] < 50

    hours = [
        datetime(2024, 1, 7, 22, tzinfo=UTC) + timedelta(hours=h)
        for h in range(24 * 7 * 8)
        if (datetime(2024, 1, 7, 22, tzinfo=UTC) + timedelta(hours=h)).weekday() < 5
        or (datetime(2024, 1, 7, 22, tzinfo=UTC) + timedelta(hours=h)).hour >= 22
    ]
    hours = [h for h in hours if not (h.weekday() == 4 and h.hour >= 22) and h.weekday() != 5]
    fx = candle_health(bars("EUR_USD", "H1", hours), "EUR_USD", "H1")
    assert fx.coverage == 1.0, "24x5 with no daily break: every calendar hour is there"
    assert sum(g["count"] for g in fx.gaps.values()) == 0
    assert fx.scheduled == {"daily_break": 0, "weekend": 7}


def test_bar_horizon_purge_reaches_across_the_weekend() -> None:
    days = weekdays(date(2024, 1, 1), date(2024, 12, 31))
    ts = pl.Series([midnight(d) for d in days], dtype=UTC_TS)
    sessions = trading_calendar("cfd", ts[0], ts[-1])
    positions = sessions.positions(ts.dt.epoch("us").to_numpy(), timedelta(days=1))
    assert (np.diff(positions) == 1).all()
    boundaries = make_splits(ts, (0.6, 0.15, 0.15, 0.1), 0, 1440, positions=positions, horizon_bars=1)
    for earlier, later in zip(boundaries.ranges, boundaries.ranges[1:], strict=False):
        last = ts.to_list().index(earlier.end)
        first = ts.to_list().index(later.start)
        assert positions[last] + 1 < positions[first], "the label's bar lies before the next split"
        assert earlier.purged_rows == 1
    assert boundaries.to_dict()["purge_bars"] == 1


def test_calendar_names_are_checked_and_old_history_is_covered() -> None:
    with pytest.raises(ConfigError, match="unknown trading calendar 'XNYZ'"):
        trading_calendar("XNYZ", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
    sessions = trading_calendar("XNYS", datetime(1995, 1, 1, tzinfo=UTC), datetime(1995, 12, 31, tzinfo=UTC))
    first = datetime.fromtimestamp(sessions.opens[0] / 1e6, UTC)
    assert first < datetime(1995, 1, 1, tzinfo=UTC), "sessions cover the data's range, however old"
    july_4th = datetime(1995, 7, 4, 13, 30, tzinfo=UTC).timestamp() * 1e6
    assert not ((sessions.opens <= july_4th) & (july_4th < sessions.closes)).any()
