"""Horizon lags for horizons in bars: lag k at bar t is the label of the bar k·N calendar positions earlier.

Series are laid on real trading calendars (XNYS daily bars with weekends and holidays, CFD hourly and
minute bars around the daily break and the weekend), with a few bars genuinely missing. The lags are checked
against a naive lookup by calendar position, against the online row computed from the declared history only
(batch = online), and for point-in-time: the lags of bar t computed from the bars up to t alone equal the
whole series' ones, and every lagged return ends at or before t.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from spxcast.config import load_settings
from spxcast.features import lags as lags_module
from spxcast.features.catalog import Catalog, FeatureContext, feature_catalog, feature_context
from spxcast.features.labels import label_names, make_labels
from spxcast.features.lags import horizon_lags, lag_name
from spxcast.features.online import history_need, online_row
from spxcast.lake.tables import UTC_TS, epoch_us
from spxcast.sources.market.calendar import bar_positions, trading_calendar
from spxcast.timeutil import bar_length

LAGS = 3


def calendar_bars(
    instrument: str, granularity: str, calendar: str, start: datetime, end: datetime, seed: int
) -> pl.DataFrame:
    """Bars at every session (D) or slot (intraday) of ``calendar`` between start and end, a random walk,
    with about 3 % of the bars missing."""
    sessions = trading_calendar(calendar, start, end)
    bar = bar_length(granularity)
    stamps = sessions.opens if bar >= timedelta(days=1) else sessions.slots(bar)
    lo, hi = (int(d.timestamp() * 1_000_000) for d in (start, end))
    stamps = stamps[(stamps >= lo) & (stamps < hi)]
    rng = np.random.default_rng(seed)
    stamps = stamps[rng.uniform(size=stamps.size) > 0.03]
    close = 5000 * np.exp(np.cumsum(rng.normal(0, 0.002, stamps.size)))
    return pl.DataFrame(
        {
            "instrument": instrument,
            "granularity": granularity,
            "ts": pl.Series(stamps, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")).cast(UTC_TS),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 100.0,
        }
    )


CASES = {
    "D XNYS, N=1": (
        "SPX",
        "D",
        "XNYS",
        1,
        datetime(2023, 6, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
    ),
    "D XNYS, N=2": (
        "SPX",
        "D",
        "XNYS",
        2,
        datetime(2023, 6, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
    ),
    "H1 cfd, N=2": (
        "SPX500_USD",
        "H1",
        "cfd",
        2,
        datetime(2024, 1, 3, tzinfo=UTC),
        datetime(2024, 2, 10, tzinfo=UTC),
    ),
    "M1 cfd, N=3": (
        "SPX500_USD",
        "M1",
        "cfd",
        3,
        datetime(2024, 1, 4, 18, tzinfo=UTC),
        datetime(2024, 1, 8, 2, tzinfo=UTC),
    ),
}


def case(name: str) -> tuple[pl.DataFrame, FeatureContext]:
    instrument, granularity, calendar, n, start, end = CASES[name]
    bars = calendar_bars(instrument, granularity, calendar, start, end, seed=len(name))
    minutes = round(n * bar_length(granularity).total_seconds() / 60)
    return bars, FeatureContext(granularity, minutes, LAGS, 0.0, horizon_bars=n, calendar=calendar)


def positions(bars: pl.DataFrame, context: FeatureContext) -> np.ndarray:
    return bar_positions(epoch_us(bars["ts"]), "", bar_length(context.granularity), context.calendar)


@pytest.mark.parametrize("name", list(CASES))
def test_bar_lags_are_the_labels_k_n_calendar_positions_earlier(name: str) -> None:
    bars, context = case(name)
    n = context.horizon_bars
    assert n is not None
    got = horizon_lags(bars, context)
    assert got.columns == [lag_name(context.horizon_minutes, k, n) for k in range(1, LAGS + 1)]
    assert got.columns[0] == f"lag1_ret_{n}b_pct"
    label = label_names(context.horizon_minutes, n)[0]
    labels = make_labels(bars, context.horizon_minutes, 0.0, n, context.calendar)[label].to_list()
    pos = positions(bars, context).tolist()
    by_position = dict(zip(pos, labels, strict=True))
    after_gap = 0
    gaps = bars["ts"].diff().to_list()
    for row, p in enumerate(pos):
        for k in range(1, LAGS + 1):
            want = by_position.get(p - k * n)
            value = got[lag_name(context.horizon_minutes, k, n)][row]
            assert (value is None) == (want is None), (name, row, k)
            if want is not None:
                assert value == np.float32(want), (name, row, k)
        # A bar after a weekend, holiday or daily break (a gap longer than the bar) still has its lag.
        if row and gaps[row] > bar_length(context.granularity) and got[got.columns[0]][row] is not None:
            after_gap += 1
    assert after_gap >= 3, f"{name}: lags must reach across weekends and breaks"
    assert got[got.columns[-1]].null_count() < bars.height / 3


@pytest.mark.parametrize("name", list(CASES))
def test_bar_lags_are_point_in_time_and_match_the_online_row(name: str) -> None:
    """Truncating the series at t changes none of t's lags, every lagged return ends at or before t, and
    the online row from the declared history (k·N + 1 bars) equals the batch value."""
    bars, context = case(name)
    n = context.horizon_bars
    assert n is not None
    catalog = Catalog(lags_module.specs(context))
    names = [s.name for s in catalog]
    need = history_need(catalog)
    assert need.bars == LAGS * n + 1
    full = horizon_lags(bars, context)
    pos = positions(bars, context)
    gaps = np.flatnonzero(np.diff(pos) > 1) + 1
    rng = np.random.default_rng(5)
    after_gaps = gaps[gaps > LAGS * n]
    rows = sorted(
        {
            *rng.choice(after_gaps, min(12, after_gaps.size), replace=False).tolist(),
            *rng.integers(LAGS * n, bars.height, 12).tolist(),
        }
    )
    for row in rows:
        past = bars.head(row + 1)
        truncated = horizon_lags(past, context).tail(1)
        online = online_row(past, pl.DataFrame(), catalog, context, names)
        for k, column in enumerate(names, start=1):
            assert truncated[column][0] == full[column][row], (name, row, column)
            assert online[column][0] == full[column][row], (name, row, column)
            if full[column][row] is not None:  # its return ran from position p-kN to p-(k-1)N <= p
                start, end = pos[row] - k * n, pos[row] - (k - 1) * n
                assert start in pos[: row + 1] and end in pos[: row + 1] and end <= pos[row]


def test_running_catalog_in_bar_mode_names_lags_in_bars() -> None:
    settings = load_settings(granularity="D", horizon_bars=2, calendar="XNYS", instrument="SPX")
    context = feature_context(settings)
    assert (context.horizon_bars, context.calendar) == (2, "XNYS")
    lag_specs = [s for s in feature_catalog(settings) if s.group == "lags"]
    assert [s.name for s in lag_specs][:2] == ["lag1_ret_2b_pct", "lag2_ret_2b_pct"]
    assert [s.lookback for s in lag_specs][:2] == [3, 5]
    minutes = feature_context(load_settings(granularity="M1", horizon_minutes=30))
    assert minutes.horizon_bars is None
    assert lag_name(30, 1) == "lag1_ret_30m_pct"
