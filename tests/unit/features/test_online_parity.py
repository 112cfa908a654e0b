"""Train/serve parity over every model input: the online row of a bar equals its gold.features row.

A synthetic stretch of M1 bars on the CFD calendar (weekends, daily breaks, random halts) with scored
articles (random arrivals, bursts, and articles received in the last minute before a bar's close, exactly
at it, and just after it) is built once. Gold is built by the batch path (market features over the whole
series, news signals over every article, horizon lags and labels from the bars). For 200 random bars plus
the first bars after the daily break, the weekend and a halt, and the bars with last-minute articles,
:func:`online_row` computed from only the history :func:`history_need` asks for reproduces the gold row
of the LightGBM, XGBoost and AR feature sets (their models' column order) up to float32 rounding — and,
for features over recursive smoothers (EMA, Wilder), the < 1e-8 relative weight their declared lookback
leaves on older bars (:data:`spxcast.features.terms.EWM_TAIL`), which can move a near-zero percent-scale
value such as ``ema_dist_s200`` by a few 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from features_factory import random_candles
from spxcast.features.build import features_by_series, gold_features_frame, market_specs
from spxcast.features.catalog import NEWS_GROUP, Catalog, FeatureContext, default_catalog
from spxcast.features.labels import label_schema, make_labels
from spxcast.features.lags import horizon_lags
from spxcast.features.news import news_signals
from spxcast.features.online import ArticleArrays, BarArrays, history_need, online_row, online_values
from spxcast.features.terms import EWM_TAIL
from spxcast.lake.tables import BAR_KEY, UTC_TS
from spxcast.models.train import CANDIDATES, TrainingSpec, make_model

CONTEXT = FeatureContext("M1", 30, horizon_lags=6)
N_BARS = 45_000  # about 6.5 trading weeks from a Thursday
N_RANDOM = 200
ULPS = 4  # float32 rounding: batch (whole history) and online (trailing window) may differ in the last bits
TRUNCATION = 100 * EWM_TAIL  # absolute, percent-scale: what a smoother's truncated tail may move a value


@dataclass(frozen=True)
class World:
    candles: pl.DataFrame
    articles: pl.DataFrame
    gold: pl.DataFrame
    catalog: Catalog
    sampled: list[int]
    special: dict[str, list[int]]


def _articles(candles: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, list[int]]:
    """Random articles over the stretch, plus for some bars articles at close - 30 s, at the close and
    1 microsecond after it. Returns them and the rows of those bars."""
    ts = candles["ts"]
    start, end = ts[0], ts[-1] + timedelta(minutes=1)
    span_us = int((end - start).total_seconds() * 1e6)
    n = 6000
    offsets = np.sort(rng.integers(0, span_us, n))
    bursts = np.repeat(offsets[rng.choice(n, 300, replace=False)], 3)  # several articles at one instant
    received = [start + timedelta(microseconds=int(u)) for u in np.concatenate([offsets, bursts])]
    last_minute = sorted(rng.choice(np.arange(2000, candles.height), 12, replace=False).tolist())
    for row in last_minute:
        close = ts[row] + timedelta(minutes=1)
        received += [close - timedelta(seconds=30), close, close + timedelta(microseconds=1)]
    m = len(received)
    frame = pl.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(m)],
            "received_at": pl.Series(received, dtype=UTC_TS),
            "score": rng.uniform(-1, 1, m).astype(np.float32),
            "confidence": rng.uniform(0.3, 1, m).astype(np.float32),
        }
    )
    return frame.sort("received_at"), last_minute


def _special_rows(candles: pl.DataFrame) -> dict[str, list[int]]:
    """First bars after the daily break, after a weekend, after a halt (each: a few of them)."""
    gap = candles["ts"].diff().dt.total_minutes().fill_null(0).to_numpy()
    hour = candles["ts"].dt.hour().to_numpy()
    weekday = candles["ts"].dt.weekday().to_numpy()
    rows = np.arange(candles.height)
    after_break = rows[(gap == 61) & (hour == 22)]
    after_weekend = rows[(gap > 1000) & (weekday == 7)]
    after_halt = rows[(gap > 1) & (gap < 60)]
    return {
        "daily break": after_break[1:4].tolist(),
        "weekend": after_weekend[:3].tolist(),
        "halt": after_halt[:4].tolist(),
    }


@pytest.fixture(scope="module")
def world() -> World:
    rng = np.random.default_rng(20)
    candles = random_candles(N_BARS, start=datetime(2024, 1, 4, 9, 0, tzinfo=UTC), seed=12, halts=10)
    articles, last_minute = _articles(candles, rng)
    catalog = default_catalog(CONTEXT)
    market = features_by_series(candles, market_specs(catalog))
    signals = news_signals(candles.select(BAR_KEY), articles, CONTEXT)
    labels = make_labels(candles, CONTEXT.horizon_minutes, CONTEXT.label_tolerance_minutes)
    lags = candles.select(BAR_KEY).hstack(horizon_lags(candles, CONTEXT).get_columns())
    gold = gold_features_frame(market, signals, labels, catalog, label_schema(30), lags)
    special = {**_special_rows(candles), "last-minute articles": last_minute}
    sampled = sorted(
        set(rng.choice(np.arange(candles.height), N_RANDOM, replace=False).tolist()).union(
            *map(set, special.values())
        )
    )
    return World(candles, articles, gold, catalog, sampled, special)


def _feature_sets(catalog: Catalog) -> dict[str, list[str]]:
    """Each candidate's input columns, in its model's order, as training builds it."""
    return {
        model: make_model(
            TrainingSpec(
                model=model,
                features=tuple(catalog.names()),
                news_features=tuple(catalog.names(NEWS_GROUP)),
                horizon_minutes=CONTEXT.horizon_minutes,
                horizon_bars=30,
                ar_lags=CONTEXT.horizon_lags,
            )
        ).feature_names
        for model in CANDIDATES
    }


def _assert_float32_equal(online: np.ndarray, gold: np.ndarray, names: list[str], bar: object) -> None:
    both_null = np.isnan(online) & np.isnan(gold)
    assert np.array_equal(np.isnan(online), np.isnan(gold)), (
        bar,
        [n for n, a, b in zip(names, online, gold, strict=True) if np.isnan(a) != np.isnan(b)],
    )
    spacing = np.spacing(np.maximum(np.abs(online), np.abs(gold)).astype(np.float32)).astype(np.float64)
    close = both_null | (np.abs(online - gold) <= ULPS * spacing + TRUNCATION)
    assert close.all(), (
        bar,
        [(n, a, b) for n, a, b, ok in zip(names, online, gold, close, strict=True) if not ok],
    )


def test_the_world_has_every_special_bar(world: World) -> None:
    assert all(len(rows) >= 3 for rows in world.special.values()), world.special
    assert len(world.sampled) >= N_RANDOM


def test_online_rows_equal_gold_for_every_candidate_feature_set(world: World) -> None:
    sets = _feature_sets(world.catalog)
    assert sets["lightgbm"] == sets["xgboost"] == world.catalog.names()
    assert any(n.startswith("lag") for n in sets["ar"]) and any(n.startswith("news_") for n in sets["ar"])
    needs = {model: history_need(world.catalog, names) for model, names in sets.items()}
    gold = world.gold
    for t in world.sampled:
        bar = world.candles["ts"][t]
        close = bar + timedelta(minutes=1)
        expected = gold.row(t, named=True)
        assert expected["ts"] == bar
        for model in ("lightgbm", "ar"):  # xgboost reads the same columns as lightgbm (asserted above)
            names = sets[model]
            window = needs[model].keep_bars(world.candles.head(t + 1))
            articles = world.articles.filter(pl.col("received_at") <= close + timedelta(minutes=5))
            row = online_row(window, articles, world.catalog, CONTEXT, names)
            assert row.columns == ["ts", *names]
            assert row["ts"][0] == bar
            assert all(row.schema[n] == world.catalog.get(n).dtype for n in names)
            online = row.select(names).cast(pl.Float64).to_numpy()[0]
            want = np.array([expected[n] for n in names], dtype=np.float64)
            _assert_float32_equal(online, want, names, (model, t, bar))


def test_last_minute_articles_count_and_later_ones_do_not(world: World) -> None:
    names = world.catalog.names(NEWS_GROUP)
    for t in world.special["last-minute articles"]:
        window = world.candles.head(t + 1).tail(5)
        row = online_row(window, world.articles, world.catalog, CONTEXT, names)
        close = world.candles["ts"][t] + timedelta(minutes=1)
        received = world.articles.filter(
            (pl.col("received_at") > close - timedelta(minutes=15)) & (pl.col("received_at") <= close)
        )
        assert row["news_count_15m"][0] == received.height >= 2  # close - 30 s and the close itself
        assert row["news_minutes_since_last"][0] == 0.0  # one arrived exactly at the close


def test_history_need_is_enough_and_declared_per_family(world: World) -> None:
    need = history_need(world.catalog)
    assert need.bars == world.catalog.max_lookback()
    assert need.bar_minutes == CONTEXT.horizon_lags * CONTEXT.horizon_minutes
    assert need.article_minutes >= 1440  # minutes since the last article are capped at a day
    market_only = history_need(world.catalog, [s.name for s in world.catalog if s.expr is not None])
    assert market_only.bar_minutes == 0 and market_only.article_minutes == 0
    # Less history than declared changes the row: the declaration is not an over-estimate everywhere.
    t = world.sampled[-1]
    full = online_row(world.candles.head(t + 1), world.articles, world.catalog, CONTEXT)
    short = online_row(world.candles.head(t + 1).tail(need.bars // 2), world.articles, world.catalog, CONTEXT)
    assert not full.equals(short)


def test_no_feature_names_give_the_bar_time_alone(world: World) -> None:
    """A live loop with no model deployed asks for no features: the row is the bar's time, not an error."""
    window = world.candles.head(200)
    row = online_row(window, world.articles, world.catalog, CONTEXT, [])
    assert row.columns == ["ts"]
    assert row["ts"].to_list() == [window["ts"][-1]]


def test_the_loops_numpy_path_gives_the_online_row_bit_for_bit(world: World) -> None:
    """``online_values`` on a view of one NumPy window, with a bar's articles found by binary search (the
    live loop's path), equals ``online_row`` on that bar's frame and ``keep_articles`` (one rule, two
    forms) -- to the bit, not within a tolerance."""
    names = world.catalog.names()
    need = history_need(world.catalog, names)
    end = max(world.sampled) + 1
    window = BarArrays.of(world.candles.head(end))
    articles = ArticleArrays.of(world.articles)
    for t in world.sampled:
        close = world.candles["ts"][t] + timedelta(minutes=1)
        bars = window.head(t + 1)
        found = need.articles_for(articles, int(bars.ts_us[-1]) + 60_000_000)
        kept = need.keep_articles(world.articles, close)
        assert found.received_us.tolist() == ArticleArrays.of(kept).received_us.tolist()
        values = online_values(bars, found, world.catalog, CONTEXT, names)
        row = online_row(need.keep_bars(world.candles.head(t + 1)), kept, world.catalog, CONTEXT, names)
        expected = row.select(names).cast(pl.Float32).to_numpy()[0]
        assert values.dtype == np.float32 and values.shape == expected.shape
        assert np.array_equal(values, expected, equal_nan=True), (t, names)
