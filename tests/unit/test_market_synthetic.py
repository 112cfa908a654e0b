from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import kurtosis

from spxcast.config import SyntheticMarketSettings
from spxcast.errors import ConfigError
from spxcast.sources.market.calendar import is_trading_minute, minutes_since_anchor
from spxcast.sources.market.synthetic import SyntheticCandleSource, SyntheticMarket

START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


def source(seed: int = 7, horizon: int = 30, **config: object) -> SyntheticCandleSource:
    return SyntheticCandleSource(SyntheticMarketSettings(**config), seed, horizon)  # type: ignore[arg-type]


def generate(
    days: int, granularity: str = "M1", start: datetime = START, **config: object
) -> SyntheticMarket:
    return source(**config).generate("SPX500_USD", granularity, start, start + timedelta(days=days))


def test_same_seed_same_frames_and_other_seed_differs() -> None:
    first, second = generate(3, planted_signal=True), generate(3, planted_signal=True)
    assert first.candles.equals(second.candles)
    assert first.events.equals(second.events)
    assert first.oracle is not None
    assert second.oracle is not None
    assert first.oracle.equals(second.oracle)
    other = SyntheticCandleSource(SyntheticMarketSettings(), 8, 30).generate(
        "SPX500_USD", "M1", START, START + timedelta(days=3)
    )
    assert not other.candles.equals(first.candles)


@pytest.mark.parametrize("granularity", ["M1", "M5", "H1"])
def test_chunked_generation_equals_one_pass(granularity: str) -> None:
    market = source(planted_signal=True)
    end = START + timedelta(days=9)
    whole = market.generate("SPX500_USD", granularity, START, end)
    cuts = [START, START + timedelta(days=2, hours=7, minutes=13), START + timedelta(days=5), end]
    parts = [market.generate("SPX500_USD", granularity, lo, hi) for lo, hi in itertools.pairwise(cuts)]
    assert pl.concat([p.candles for p in parts]).equals(whole.candles)
    assert pl.concat([p.events for p in parts]).equals(whole.events)
    assert pl.concat([p.oracle for p in parts if p.oracle is not None]).equals(whole.oracle)


def test_price_is_continuous_across_chunk_boundaries() -> None:
    market = source()
    cut = START + timedelta(days=1, hours=3)
    before = market.generate("SPX500_USD", "M1", START, cut).candles
    after = market.generate("SPX500_USD", "M1", cut, cut + timedelta(hours=1)).candles
    assert after["open"][0] == before["close"][-1]


def test_bars_follow_the_oanda_cfd_calendar() -> None:
    candles = generate(14).candles
    ts = candles["ts"]
    minutes = np.array([minutes_since_anchor(t) for t in ts.to_list()])
    assert is_trading_minute(minutes).all()
    hours, weekdays = ts.dt.hour(), ts.dt.weekday()
    assert (hours != 21).all(), "no bar in the daily 21:00-22:00 UTC break"
    assert (weekdays != 6).all(), "no bar on Saturday"
    assert ((weekdays != 7) | (hours >= 22)).all(), "Sunday bars only from 22:00 UTC"
    assert ((weekdays != 5) | (hours < 21)).all(), "Friday bars only until 21:00 UTC"
    assert candles.height == 10 * 1380, "two weeks: ten 23-hour sessions of M1 bars"
    assert ts.is_sorted()
    assert ts.n_unique() == candles.height


def test_candles_are_internally_consistent() -> None:
    candles = generate(5, with_bid_ask=True).candles
    assert (candles["low"] <= candles[["open", "close"]].min_horizontal()).all()
    assert (candles["high"] >= candles[["open", "close"]].max_horizontal()).all()
    assert (candles["low"] > 0).all()
    assert (candles["volume"] > 0).all()
    assert (candles["bid_close"] < candles["ask_close"]).all()
    assert candles["volume"].dtype == pl.Int64
    no_quotes = generate(1, with_bid_ask=False).candles
    assert no_quotes["bid_close"].null_count() == no_quotes.height


def test_stylised_facts_fat_tails_clustering_and_u_shape() -> None:
    candles = generate(120).candles
    returns = np.diff(np.log(candles["close"].to_numpy()))
    assert kurtosis(returns, fisher=False) > 3, "fat tails"
    size = np.abs(returns)
    assert np.corrcoef(size[:-5], size[5:])[0, 1] > 0.05, "volatility clustering"
    frame = candles.with_columns(
        ret=pl.col("close").log().diff().abs(),
        minute=pl.col("ts").dt.hour().cast(pl.Int32) * 60 + pl.col("ts").dt.minute(),
    ).drop_nulls()

    def mean_abs(lo: int, hi: int) -> float:
        return float(frame.filter(pl.col("minute").is_between(lo, hi - 1))["ret"].mean())  # type: ignore[arg-type]

    open_, midday, close = (
        mean_abs(14 * 60 + 30, 15 * 60),
        mean_abs(17 * 60 + 30, 19 * 60),
        mean_abs(20 * 60 + 30, 21 * 60),
    )
    assert open_ > 1.3 * midday, "U-shaped intraday volatility: busy open"
    assert close > 1.1 * midday, "U-shaped intraday volatility: busy close"
    volume = candles.with_columns(
        minute=pl.col("ts").dt.hour().cast(pl.Int32) * 60 + pl.col("ts").dt.minute()
    )
    us_open = volume.filter(pl.col("minute").is_between(14 * 60 + 30, 14 * 60 + 59))["volume"].mean()
    asia = volume.filter(pl.col("minute").is_between(2 * 60, 4 * 60))["volume"].mean()
    assert us_open > 2 * asia  # type: ignore[operator]


def test_weekend_gap_is_larger_than_a_minute_move() -> None:
    candles = generate(400, granularity="M1").candles
    frame = candles.with_columns(
        prev_close=pl.col("close").shift(1), gap=pl.col("ts").diff().dt.total_hours()
    )
    gaps = frame.filter(pl.col("gap") > 24).select((pl.col("open") / pl.col("prev_close")).log().abs())
    minutes = frame.filter(pl.col("gap") == 0).select((pl.col("close") / pl.col("open")).log().abs())
    assert gaps.item(0, 0) is not None
    assert float(gaps.mean().item()) > 3 * float(minutes.mean().item())


def test_events_are_in_trading_time_and_well_formed() -> None:
    events = generate(30).events
    assert events.height > 100
    assert set(events["direction"].unique().to_list()) == {-1, 1}
    assert events["magnitude"].is_between(0, 1).all()
    assert events["event_id"].n_unique() == events.height
    minutes = np.array([minutes_since_anchor(t) for t in events["received_at"].to_list()])
    assert is_trading_minute(minutes).all()
    hours = events["received_at"].dt.hour()
    us_share = float(hours.is_between(13, 20).mean())  # type: ignore[arg-type]
    assert us_share > 0.4, "events cluster in US hours"
    assert events.equals(generate(30, planted_signal=True).events), "events do not depend on the planted flag"


def test_planted_signal_off_means_no_drift_and_no_oracle() -> None:
    off = generate(10)
    assert off.oracle is None
    zero = generate(10, planted_signal=True, planted_strength=0.0)
    assert zero.candles.equals(off.candles), "strength 0 adds no drift"
    assert zero.oracle is not None
    assert (zero.oracle["oracle_ret_pct"] == 0).all()
    on = generate(10, planted_signal=True)
    assert not on.candles["close"].equals(off.candles["close"])


def test_oracle_predicts_forward_returns_with_a_strong_planted_signal() -> None:
    market = generate(60, planted_signal=True, planted_strength=6.0)
    assert market.oracle is not None
    frame = market.candles.join(market.oracle, on="ts").with_columns(
        future=pl.col("close").shift(-30), future_ts=pl.col("ts").shift(-30)
    )
    frame = frame.filter(pl.col("future_ts") - pl.col("ts") == timedelta(minutes=30))
    realised = 100 * (frame["future"] / frame["close"] - 1)
    correlation = np.corrcoef(realised.to_numpy(), frame["oracle_ret_pct"].to_numpy())[0, 1]
    # Events arriving within the next 30 minutes are unforeseeable, so even the oracle is not perfect.
    assert correlation > 0.6
    slope = np.polyfit(frame["oracle_ret_pct"].to_numpy(), realised.to_numpy(), 1)[0]
    assert 0.8 < slope < 1.2, "the oracle is the expected return, not just correlated with it"


def test_default_strength_explains_a_clear_share_of_variance() -> None:
    market = generate(90, planted_signal=True)
    assert market.oracle is not None
    frame = (
        market.candles.join(market.oracle, on="ts")
        .with_columns(future=pl.col("close").shift(-30), future_ts=pl.col("ts").shift(-30))
        .filter(pl.col("future_ts") - pl.col("ts") == timedelta(minutes=30))
    )
    realised = (100 * (frame["future"] / frame["close"] - 1)).to_numpy()
    r2 = 1 - np.var(realised - frame["oracle_ret_pct"].to_numpy()) / np.var(realised)
    assert 0.05 < r2 < 0.3


def test_oracle_uses_only_events_received_by_the_bar_close() -> None:
    session_open = datetime(2024, 3, 3, 22, tzinfo=UTC)
    market = generate(5, start=session_open, planted_signal=True)
    assert market.oracle is not None
    first_event = market.events["received_at"].min()
    before = market.oracle.filter(pl.col("ts") + timedelta(minutes=1) < first_event)
    assert before.height > 0
    assert (before["oracle_ret_pct"] == 0).all()


def test_coarse_bars_aggregate_the_minutes() -> None:
    m1 = generate(3).candles
    m5 = generate(3, granularity="M5").candles
    manual = m1.group_by_dynamic("ts", every="5m").agg(
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
    )
    assert m5.select(manual.columns).equals(manual)
    daily = generate(7, granularity="D").candles
    assert daily.height == 5, "one bar per session"
    assert (daily["ts"].dt.hour() == 22).all(), "stamped at the session open"


def test_bad_requests_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="must be after"):
        source().generate("SPX500_USD", "M1", START, START)
    with pytest.raises(ConfigError, match="whole minutes"):
        source().generate("SPX500_USD", "S5", START, START + timedelta(days=1))
    with pytest.raises(ConfigError, match="starts at"):
        source().generate("SPX500_USD", "M1", datetime(1990, 1, 1, tzinfo=UTC), START)
    with pytest.raises(ConfigError, match="non-negative seed"):
        source(seed=-1)
    with pytest.raises(ConfigError, match="calendar anchor"):
        source(start="1990-01-01")


def _naive_drift(events: pl.DataFrame, minute: datetime, scale: float, tau: float) -> float:
    """Planted log-return of the M1 bar starting at ``minute``, event by event (events of one session)."""
    total = 0.0
    for received, direction, magnitude in events.select("received_at", "direction", "magnitude").iter_rows():
        age = (minute - received).total_seconds() / 60
        if age >= 0:
            total += direction * magnitude * scale * np.exp(-age / tau)
    return total


def test_oracle_and_drift_match_a_naive_event_loop() -> None:
    session_open = datetime(2024, 3, 4, 22, tzinfo=UTC)  # Monday 22:00: Tuesday's session, and only it
    config = {"planted_signal": True, "planted_strength": 2.0}
    market = generate(1, start=session_open, **config)
    flat = generate(1, start=session_open, planted_signal=True, planted_strength=0.0)
    assert market.oracle is not None
    synthetic = source(**config)
    scale = 2.0 * synthetic_d0() * synthetic._minute_sigma
    events, tau, horizon = market.events, 30.0, 30
    session_close = session_open + timedelta(hours=23)
    oracle = dict(market.oracle.select("ts", "oracle_ret_pct").iter_rows())
    for bar in [session_open + timedelta(minutes=m) for m in (3, 200, 700, 1000, 1100, 1200, 1370, 1379)]:
        close = bar + timedelta(minutes=1)
        known = events.filter(pl.col("received_at") <= close)
        steps = [
            close + timedelta(minutes=j)
            for j in range(horizon)
            if close + timedelta(minutes=j) < session_close
        ]
        expected = 100 * np.expm1(sum(_naive_drift(known, s, scale, tau) for s in steps))
        assert oracle[bar] == pytest.approx(expected, abs=1e-9), bar
    # Earlier sessions' drift moves the opening level; within the session the difference is the drift.
    opening = np.log(market.candles["open"][0]) - np.log(flat.candles["open"][0])
    drift = np.log(market.candles["close"].to_numpy()) - np.log(flat.candles["close"].to_numpy()) - opening
    minutes = market.candles["ts"].to_list()
    expected_drift = np.cumsum([_naive_drift(events, m, scale, tau) for m in minutes])
    assert np.abs(drift - expected_drift).max() < 5e-6, (
        "closes carry exactly the planted drift (cent rounding aside)"
    )


def synthetic_d0() -> float:
    from spxcast.sources.market import synthetic

    return synthetic._DRIFT_D0


def test_coarse_bar_oracle_equals_the_minute_oracle_at_the_same_close() -> None:
    m1 = generate(3, planted_signal=True).oracle
    m5 = generate(3, granularity="M5", planted_signal=True).oracle
    assert m1 is not None
    assert m5 is not None
    same_close = m5.select(pl.col("ts") + timedelta(minutes=4), "oracle_ret_pct").join(
        m1.select("ts", "oracle_ret_pct"), on="ts", suffix="_m1"
    )
    assert same_close.height == m5.height
    assert (same_close["oracle_ret_pct"] - same_close["oracle_ret_pct_m1"]).abs().max() < 1e-12
    assert (m5["oracle_ret_pct"] != 0).sum() > 100
