"""News signals: point-in-time per feature (truncation, scrambling, a late article), vs a naive loop."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spxcast.features.catalog import Catalog, FeatureContext
from spxcast.features.news import (
    AVAILABLE,
    AVAILABLE_WINDOW_MINUTES,
    DECAY_TAUS_MINUTES,
    MAX_MINUTES_SINCE,
    MINUTES_SINCE,
    WINDOWS_MINUTES,
    decay_name,
    news_signals,
    specs,
    window_name,
)
from spxcast.lake.tables import UTC_TS

CONTEXT = FeatureContext("M1", 30)
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
NAMES = [s.name for s in specs(CONTEXT)]


def _bars(minutes: int = 480, granularity: str = "M1", step: int = 1) -> pl.DataFrame:
    ts = [T0 + timedelta(minutes=i) for i in range(0, minutes, step)]
    return pl.DataFrame(
        {"instrument": "SPX500_USD", "granularity": granularity, "ts": ts}, schema_overrides={"ts": UTC_TS}
    )


def _articles(n: int = 300, seed: int = 0, minutes: int = 480) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(-120, minutes, size=n))
    # Some articles share a received_at, and some arrive exactly at a bar close.
    offsets[::17] = np.round(offsets[::17])
    received = [T0 + timedelta(seconds=round(float(o) * 60, 3)) for o in offsets]
    return pl.DataFrame(
        {
            "received_at": received,
            "score": rng.uniform(-1, 1, size=n).astype(np.float32),
            "confidence": rng.uniform(0.34, 1, size=n).astype(np.float32),
        },
        schema_overrides={"received_at": UTC_TS},
    )


def test_specs_are_catalog_valid_and_cover_the_documented_signals() -> None:
    catalog = Catalog(specs(CONTEXT))
    assert catalog.groups() == ["news"]
    for w in WINDOWS_MINUTES:
        for stat in ("sent_avg", "count", "quality", "strength"):
            assert window_name(stat, w) in catalog
    assert {decay_name(t) for t in DECAY_TAUS_MINUTES} | {MINUTES_SINCE, AVAILABLE} <= set(catalog.names())
    assert 30 in DECAY_TAUS_MINUTES  # the planted drift's e-folding time
    for spec in catalog:
        assert spec.expr is None
        assert spec.lookback == 1
        assert "received_at <= the bar's close" in spec.description


def test_output_shape_types_and_order() -> None:
    bars = _bars().sample(fraction=1.0, shuffle=True, seed=3)
    out = news_signals(bars, _articles(), CONTEXT)
    assert out.columns == ["instrument", "granularity", "ts", *NAMES]
    assert out["ts"].to_list() == bars["ts"].to_list()
    assert all(out.schema[name] == pl.Float32 for name in NAMES)
    assert out.select(NAMES).null_count().sum_horizontal().item() == 0


def _naive(bars: pl.DataFrame, articles: pl.DataFrame, bar_minutes: float = 1.0) -> pl.DataFrame:
    """Feature values by a direct loop over articles, bar by bar."""
    rows = []
    items = list(articles.iter_rows(named=True))
    for ts in bars["ts"]:
        close = ts + timedelta(minutes=bar_minutes)
        seen = [a for a in items if a["received_at"] <= close]
        row: dict[str, float] = {}
        for w in WINDOWS_MINUTES:
            inside = [a for a in seen if a["received_at"] > close - timedelta(minutes=w)]
            avg = sum(a["score"] for a in inside) / len(inside) if inside else 0.0
            quality = sum(a["confidence"] for a in inside) / len(inside) if inside else 0.0
            row |= {
                window_name("sent_avg", w): avg,
                window_name("count", w): len(inside),
                window_name("quality", w): quality,
                window_name("strength", w): abs(avg) * quality,
            }
        ages = [(close - a["received_at"]).total_seconds() / 60 for a in seen]
        for tau in DECAY_TAUS_MINUTES:
            row[decay_name(tau)] = sum(
                a["score"] * math.exp(-age / tau) for a, age in zip(seen, ages, strict=True)
            )
        row[MINUTES_SINCE] = min(min(ages), MAX_MINUTES_SINCE) if ages else MAX_MINUTES_SINCE
        row[AVAILABLE] = float(any(age < AVAILABLE_WINDOW_MINUTES for age in ages))
        rows.append(row)
    # Every row decides the dtypes: sums over no article are the integer 0 in the first rows.
    return pl.DataFrame(rows, infer_schema_length=None).select(NAMES)


@pytest.mark.parametrize("granularity", ["M1", "M5"])
def test_matches_a_naive_loop(granularity: str) -> None:
    bar_minutes = 1 if granularity == "M1" else 5
    bars = _bars(300, granularity, bar_minutes)
    articles = _articles(120, seed=5, minutes=300)
    fast = news_signals(bars, articles, FeatureContext(granularity, 30)).select(NAMES)
    slow = _naive(bars, articles, bar_minutes)
    for name in NAMES:
        np.testing.assert_allclose(
            fast[name].to_numpy(), slow[name].to_numpy(), rtol=2e-5, atol=2e-5, err_msg=name
        )


def test_no_articles_gives_the_documented_defaults() -> None:
    empty = _articles(0)
    out = news_signals(_bars(30), empty, CONTEXT)
    for name in NAMES:
        expected = MAX_MINUTES_SINCE if name == MINUTES_SINCE else 0.0
        assert (out[name] == expected).all(), name


@pytest.mark.parametrize("cut_minute", [37, 121, 299, 412])
def test_truncation_and_scrambling_after_a_close_leave_that_row_unchanged(cut_minute: int) -> None:
    bars = _bars()
    articles = _articles()
    full = news_signals(bars, articles, CONTEXT)
    close = T0 + timedelta(minutes=cut_minute + 1)
    truncated = articles.filter(pl.col("received_at") <= close)
    rng = np.random.default_rng(cut_minute)
    later = articles.filter(pl.col("received_at") > close)
    scrambled = pl.concat(
        [
            truncated,
            later.with_columns(
                pl.Series("score", rng.uniform(-1, 1, later.height).astype(np.float32)),
                pl.Series("confidence", rng.uniform(0, 1, later.height).astype(np.float32)),
                (pl.col("received_at") + pl.duration(seconds=pl.Series(rng.integers(0, 9000, later.height)))),
            ),
        ]
    )
    row = pl.col("ts") == T0 + timedelta(minutes=cut_minute)
    expected = full.filter(row)
    for variant in (truncated, scrambled):
        got = news_signals(bars, variant, CONTEXT).filter(row)
        for name in NAMES:
            assert got[name].to_list() == expected[name].to_list(), name


def test_an_article_received_at_1059_changes_no_bar_that_closes_before_1059() -> None:
    bars = _bars()
    articles = _articles(100, seed=9)
    late = pl.DataFrame(
        {"received_at": [datetime(2024, 3, 4, 10, 59, tzinfo=UTC)], "score": [0.9], "confidence": [0.95]},
        schema=articles.schema,
    )
    before = news_signals(bars, articles, CONTEXT)
    after = news_signals(bars, pl.concat([articles, late]), CONTEXT)
    closes = before["ts"] + timedelta(minutes=1)
    early = (closes < datetime(2024, 3, 4, 10, 59, tzinfo=UTC)).to_numpy()
    for name in NAMES:
        np.testing.assert_array_equal(
            before[name].to_numpy()[early], after[name].to_numpy()[early], err_msg=name
        )
    # The bar 10:58-10:59 closes at 10:59 and does see it: every feature family moves there.
    at = (closes == datetime(2024, 3, 4, 10, 59, tzinfo=UTC)).to_numpy()
    changed = [n for n in NAMES if before[n].to_numpy()[at] != after[n].to_numpy()[at]]
    assert window_name("count", 15) in changed
    assert decay_name(30) in changed
    assert after[MINUTES_SINCE].to_numpy()[at] == 0.0


def test_decayed_sentiment_expresses_the_planted_drift() -> None:
    """One event article: the tau=30 feature equals score * exp(-(close - received)/30 min) afterwards."""
    article = pl.DataFrame(
        {"received_at": [T0 + timedelta(minutes=10)], "score": [0.8], "confidence": [0.9]},
        schema_overrides={"received_at": UTC_TS, "score": pl.Float32, "confidence": pl.Float32},
    )
    out = news_signals(_bars(120), article, CONTEXT)
    ages = ((out["ts"] + timedelta(minutes=1)) - (T0 + timedelta(minutes=10))).dt.total_seconds() / 60
    expected = np.where(ages.to_numpy() >= 0, 0.8 * np.exp(-ages.to_numpy() / 30), 0.0)
    np.testing.assert_allclose(out[decay_name(30)].to_numpy(), expected, rtol=1e-5, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=-300, max_value=7200), min_size=0, max_size=25),
    scores=st.lists(st.floats(min_value=-1, max_value=1, width=32), min_size=25, max_size=25),
)
def test_property_matches_the_naive_loop_on_arbitrary_arrival_times(
    offsets: list[int], scores: list[float]
) -> None:
    """Arrival times in seconds around a 2-hour M1 session, ties and exact-close arrivals included."""
    bars = _bars(120)
    articles = pl.DataFrame(
        {
            "received_at": [T0 + timedelta(seconds=o) for o in offsets],
            "score": scores[: len(offsets)],
            "confidence": [0.5 + abs(s) / 2 for s in scores[: len(offsets)]],
        },
        schema={"received_at": UTC_TS, "score": pl.Float32, "confidence": pl.Float32},
    )
    fast = news_signals(bars, articles, CONTEXT).select(NAMES)
    slow = _naive(bars, articles)
    for name in NAMES:
        np.testing.assert_allclose(
            fast[name].to_numpy(), slow[name].to_numpy(), rtol=2e-5, atol=2e-5, err_msg=name
        )


def test_decayed_sums_stay_exact_across_weeks_of_articles() -> None:
    """The decayed sums are computed in blocks of at most 600 e-folding times (the shortest tau: 6.25 days);
    over 30 days of articles each bar's value is still the direct sum over every earlier article."""
    rng = np.random.default_rng(11)
    offsets = np.sort(rng.uniform(0, 30 * 1440, 400))
    articles = pl.DataFrame(
        {
            "received_at": [T0 + timedelta(minutes=float(o)) for o in offsets],
            "score": rng.uniform(-1, 1, 400).astype(np.float32),
            "confidence": np.ones(400, dtype=np.float32),
        },
        schema_overrides={"received_at": UTC_TS},
    )
    starts = sorted(
        set(np.floor(offsets).tolist())
    )  # a bar at every article: some right after a block starts
    bars = pl.DataFrame(
        {"instrument": "X", "granularity": "M1", "ts": [T0 + timedelta(minutes=m) for m in starts]},
        schema_overrides={"ts": UTC_TS},
    )
    got = news_signals(bars, articles, CONTEXT)
    scores = articles["score"].to_numpy().astype(np.float64)
    for row, start in enumerate(starts):
        age = start + 1 - offsets  # minutes from each article to the bar's close
        for tau in DECAY_TAUS_MINUTES:
            want = float(np.sum(np.where(age >= 0, scores * np.exp(-np.maximum(age, 0) / tau), 0.0)))
            assert got[decay_name(tau)][row] == pytest.approx(want, rel=1e-5, abs=1e-6), (row, tau)
