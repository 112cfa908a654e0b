"""Point-in-time and online parity, for every market feature of the catalog.

The sampled bars t are random ones plus the bars right at and after the weekend gap and a halt (the
series starts on a Thursday so that the weekend falls after the longest lookback).

Point-in-time: for each sampled bar t, the features are recomputed (a) with every bar after t removed and
(b) with every bar after t replaced by random values; row t must be identical in both and equal to the
full-history value. Parity: the expression evaluated on only the trailing ``lookback`` bars ending at t
reproduces the batch value at t, and :func:`online_row` reproduces the whole market part of the row.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from features_factory import random_candles
from spxcast.features.build import feature_frame, market_specs
from spxcast.features.catalog import FeatureContext, market_catalog
from spxcast.features.online import online_row

N_BARS = 2600
CATALOG = market_catalog(FeatureContext())
SPECS = {s.name: s for s in market_specs(CATALOG)}
MAX_LOOKBACK = CATALOG.max_lookback()
RNG = np.random.default_rng(7)
NO_ARTICLES = pl.DataFrame(
    schema={"received_at": pl.Datetime("us", "UTC"), "score": pl.Float32, "confidence": pl.Float32}
)
EARLY = sorted(RNG.choice(np.arange(0, MAX_LOOKBACK), size=6, replace=False).tolist())
RANDOM_LATE = RNG.choice(np.arange(MAX_LOOKBACK, N_BARS), size=6, replace=False).tolist()


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    return random_candles(N_BARS, start=datetime(2024, 1, 4, 9, 0, tzinfo=UTC), seed=11, halts=8)


@pytest.fixture(scope="module")
def late(candles: pl.DataFrame) -> list[int]:
    """Random bars with full history, plus the first bars after each gap there and 5 bars later."""
    gap_minutes = candles["ts"].diff().dt.total_minutes().fill_null(1).to_numpy()
    gaps = np.flatnonzero(gap_minutes > 1)
    after_gaps = [int(g) + d for g in gaps if g >= MAX_LOOKBACK for d in (0, 5) if g + d < N_BARS]
    weekend = np.flatnonzero(gap_minutes > 2 * 1440)
    assert weekend.size == 1, "the factory series must cross one weekend"
    assert weekend[0] >= MAX_LOOKBACK, "the weekend must fall after the longest lookback"
    return sorted({*RANDOM_LATE, *after_gaps})


@pytest.fixture(scope="module")
def batch(candles: pl.DataFrame) -> pl.DataFrame:
    return feature_frame(candles, list(SPECS.values()), cast=False).collect()


def _scrambled_after(candles: pl.DataFrame, t: int, seed: int) -> pl.DataFrame:
    """Rows after t replaced by random bars (timestamps kept, so the series stays sorted)."""
    rng = np.random.default_rng(seed)
    tail = candles.height - t - 1
    price = rng.uniform(100, 9000, tail)
    noise = {
        "open": price * rng.uniform(0.9, 1.1, tail),
        "high": price * rng.uniform(1.0, 1.3, tail),
        "low": price * rng.uniform(0.7, 1.0, tail),
        "close": price,
        "volume": rng.integers(0, 10_000, tail),
        "bid_close": price * 0.99,
        "ask_close": price * 1.01,
    }
    replaced = candles.slice(t + 1).with_columns(
        pl.Series(name, values, dtype=candles.schema[name]) for name, values in noise.items()
    )
    return pl.concat([candles.head(t + 1), replaced])


@pytest.fixture(scope="module")
def rows_at_t(candles: pl.DataFrame, late: list[int]) -> dict[int, tuple[pl.DataFrame, pl.DataFrame]]:
    """For each sampled t: row t computed from the truncated series and from the scrambled one."""
    specs = list(SPECS.values())
    out = {}
    for t in EARLY + late:
        truncated = feature_frame(candles.head(t + 1), specs, cast=False).collect().row(t, named=True)
        scrambled = (
            feature_frame(_scrambled_after(candles, t, seed=t), specs, cast=False)
            .collect()
            .row(t, named=True)
        )
        out[t] = (truncated, scrambled)
    return out


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and (a == b or (np.isnan(a) and np.isnan(b)))
    )


@pytest.mark.parametrize("name", list(SPECS))
def test_feature_at_t_ignores_every_later_bar(
    name: str, batch: pl.DataFrame, rows_at_t: dict, late: list[int]
) -> None:
    for t, (truncated, scrambled) in rows_at_t.items():
        full = batch[name][t]
        assert _same(truncated[name], scrambled[name]), (
            f"{name} at row {t}: {truncated[name]} vs {scrambled[name]}"
        )
        assert _same(truncated[name], full), f"{name} at row {t}: truncated {truncated[name]} vs full {full}"
    # The check is not vacuous: the feature has values at the late sampled bars.
    assert all(batch[name][t] is not None and np.isfinite(batch[name][t]) for t in late), name


@pytest.mark.parametrize("name", list(SPECS))
def test_trailing_lookback_window_reproduces_the_batch_value(
    name: str, candles: pl.DataFrame, batch: pl.DataFrame, late: list[int]
) -> None:
    spec = SPECS[name]
    for t in late:
        window = candles.slice(t - spec.lookback + 1, spec.lookback)
        online = feature_frame(window, [spec], cast=False).collect()[name][-1]
        assert online is not None, (
            f"{name}: null from its declared lookback of {spec.lookback} bars at row {t}"
        )
        assert np.isclose(online, batch[name][t], rtol=1e-6, atol=1e-9), (name, t, online, batch[name][t])


def test_online_features_reproduce_the_gold_row(candles: pl.DataFrame, late: list[int]) -> None:
    specs = list(SPECS.values())
    gold = feature_frame(candles, specs).collect()
    for t in late[:3]:
        row = online_row(candles.head(t + 1), NO_ARTICLES, CATALOG, FeatureContext())
        assert row.height == 1
        assert row["ts"][0] == candles["ts"][t]
        assert row.schema == gold.schema
        expected = gold.row(t)
        for name, value, want in zip(row.columns[1:], row.row(0)[1:], expected[1:], strict=True):
            assert np.isclose(value, want, rtol=1e-5, atol=1e-6), (name, t, value, want)


def test_online_features_refuse_a_mixed_window(candles: pl.DataFrame) -> None:
    from spxcast.errors import DataQualityError

    other = random_candles(50, instrument="NAS100_USD")
    with pytest.raises(DataQualityError, match="several instrument"):
        online_row(pl.concat([candles.tail(50), other]), NO_ARTICLES, CATALOG, FeatureContext())


def test_the_check_catches_a_global_statistic(candles: pl.DataFrame, late: list[int]) -> None:
    """Regression of the original system's bug: a regime against the median of the whole history leaks."""
    leaky = (pl.col("close") / pl.col("close").median()).alias("leaky")
    t = late[0]
    truncated = candles.head(t + 1).select(leaky)["leaky"][t]
    scrambled = _scrambled_after(candles, t, seed=1).select(leaky)["leaky"][t]
    assert not _same(truncated, scrambled)
