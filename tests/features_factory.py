"""Test factory: random-walk M1 candles on the OANDA CFD calendar (Sunday 22:00 -> Friday 21:00 UTC,
daily break 21:00-22:00 UTC), with optional random halts. Vectorised, so the benchmark uses it too."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from spxcast.lake.tables import UTC_TS


def oanda_open(minutes: np.ndarray) -> np.ndarray:
    """Whether each minute (numpy datetime64[m], UTC) is inside the CFD trading week."""
    days = minutes.astype("datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    minute_of_day = (minutes - days).astype(np.int64)
    in_break = (minute_of_day >= 21 * 60) & (minute_of_day < 22 * 60)
    closed = (
        (weekday == 5)
        | ((weekday == 6) & (minute_of_day < 22 * 60))
        | ((weekday == 4) & (minute_of_day >= 21 * 60))
    )
    return ~closed & ~in_break


def random_candles(
    n: int,
    start: datetime = datetime(2024, 1, 5, 18, 0, tzinfo=UTC),
    seed: int = 0,
    halts: int = 3,
    with_quotes: bool = True,
    instrument: str = "SPX500_USD",
    sigma: float = 3e-4,
) -> pl.DataFrame:
    """``n`` real M1 bars from ``start`` (UTC) on the CFD calendar; ``halts`` random 5-40 minute holes."""
    rng = np.random.default_rng(seed)
    grid = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "m") + np.arange(int(n * 1.5) + 4 * 1440)
    minutes = grid[oanda_open(grid)]
    keep = np.ones(minutes.size, dtype=bool)
    for begin in rng.integers(0, max(1, min(n, minutes.size) - 50), size=halts):
        keep[begin : begin + rng.integers(5, 40)] = False
    minutes = minutes[keep][:n]
    n = minutes.size
    close = 4700.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_ = np.concatenate([[4700.0], close[:-1]]) * np.exp(rng.normal(0.0, sigma / 20, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma / 2, n)))
    half_spread = close * rng.uniform(0.5e-4, 1.5e-4, n)
    quotes = with_quotes or None
    return pl.DataFrame(
        {
            "instrument": instrument,
            "granularity": "M1",
            "ts": pl.Series(minutes.astype("datetime64[us]")).dt.replace_time_zone("UTC").cast(UTC_TS),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.poisson(120, n).astype(np.int64),
            "bid_close": close - half_spread if quotes else None,
            "ask_close": close + half_spread if quotes else None,
        },
        schema_overrides={"bid_close": pl.Float64, "ask_close": pl.Float64},
    )


NEWS_TEST_FEATURES = ("news_test_score_mean", "news_test_count")


def candles_csv_frame(
    stamps: list[datetime], returns: np.ndarray, first_open: float, vol: float, rng: np.random.Generator
) -> pl.DataFrame:
    """OHLCV bars as a file source reads them (``ts`` as ISO text, UTC) from per-bar log ``returns``: each
    bar opens at the previous close (the first at ``first_open``), wicks of ``0.3 vol`` scale, volumes 100-999
    drawn from ``rng``."""
    close = first_open * np.exp(np.cumsum(returns))
    open_ = np.r_[first_open, close[:-1]]
    wick = np.abs(rng.standard_normal(len(stamps))) * vol * 0.3
    return pl.DataFrame(
        {
            "ts": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps],
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick),
            "low": np.minimum(open_, close) * (1 - wick),
            "close": close,
            "volume": rng.integers(100, 1000, len(stamps)),
        }
    )


def stub_news_module() -> object:
    """A stand-in for ``spxcast.features.news`` (owned by the news engineer, built in parallel): two news
    specs with the contract's shape (group "news", no expression), for tests of the gold join and CLI."""
    import types

    from spxcast.features.catalog import FeatureContext, FeatureSpec

    def specs(context: FeatureContext) -> list[FeatureSpec]:
        return [
            FeatureSpec(name=name, group="news", description=f"test stand-in {name}", unit="test", lookback=1)
            for name in NEWS_TEST_FEATURES
        ]

    module = types.ModuleType("spxcast.features.news")
    module.specs = specs  # type: ignore[attr-defined]
    return module


def news_signals_for(bars: pl.DataFrame, seed: int = 1) -> pl.DataFrame:
    """A gold.news_signals frame for the bars of ``bars``: bar key + the stand-in news columns."""
    rng = np.random.default_rng(seed)
    return bars.select("instrument", "granularity", "ts").with_columns(
        pl.Series(NEWS_TEST_FEATURES[0], rng.normal(size=bars.height)),
        pl.Series(NEWS_TEST_FEATURES[1], rng.integers(0, 5, bars.height).astype(np.float64)),
    )
