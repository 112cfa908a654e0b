"""The NumPy last-row evaluation of market expressions gives Polars' value of the newest bar.

Every market feature of the catalog compiles and matches Polars on the same trailing bars; the null and
edge semantics (Kleene comparisons, ``when`` with a null predicate, division by zero, logs and roots out
of domain, horizontal max/min and coalesce skipping nulls, windows holding a null, date parts) match on the
last row computed alone (NumPy scalars) and inside a longer demand (arrays). What it cannot evaluate is
left to Polars: an unknown node at compile time, a short window at run time, and a feature whose first
value disagrees with Polars.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from features_factory import random_candles
from spxcast.features import online as online_module
from spxcast.features.build import feature_frame, market_specs, with_bar_columns
from spxcast.features.catalog import Catalog, FeatureContext, FeatureSpec, default_catalog
from spxcast.features.lastrow import LastRowProgram, NotEvaluable
from spxcast.features.online import online_row
from spxcast.lake.tables import epoch_us

CONTEXT = FeatureContext("M1", 30, horizon_lags=6)
CATALOG = default_catalog(CONTEXT)
SPECS = market_specs(CATALOG)
NO_ARTICLES = pl.DataFrame(
    schema={"received_at": pl.Datetime("us", "UTC"), "score": pl.Float32, "confidence": pl.Float32}
)


def _columns(frame: pl.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    return {n: epoch_us(frame["ts"]) if n == "ts" else frame[n].cast(pl.Float64).to_numpy() for n in names}


def _polars_last(frame: pl.DataFrame, exprs: list[pl.Expr]) -> np.ndarray:
    row = frame.select(exprs).tail(1).row(0)
    return np.array([np.nan if v is None else float(v) for v in row])


def test_every_market_feature_compiles_and_equals_polars_on_the_same_bars() -> None:
    program = LastRowProgram([s.expr for s in SPECS], [s.name for s in SPECS])
    assert program.unsupported == [] and program.names == [s.name for s in SPECS]
    assert program.rows == max(s.lookback for s in SPECS)  # the node demands add up to the lookbacks
    candles = with_bar_columns(random_candles(5000, seed=4, halts=6))
    for t in (program.rows + 10, 3100, 4200, candles.height - 1):
        window = candles.head(t + 1).tail(program.rows)
        got = program.run(_columns(window, program.columns))
        want = _polars_last(window, [s.expr for s in SPECS])
        # Recursive means are seeded at different rows (their declared warm-up vs the whole window): the
        # truncated tail moves values by < 1e-8 relative.
        close = np.isclose(got, want, rtol=1e-7, atol=1e-8) | (np.isnan(got) & np.isnan(want))
        assert close.all(), [
            (n, g, w) for n, g, w, ok in zip(program.names, got, want, close, strict=True) if not ok
        ]


def _edge_frame() -> pl.DataFrame:
    start = datetime(2024, 3, 1, 20, 58, 30, tzinfo=UTC)
    ts = [start + timedelta(minutes=m) for m in (0, 1, 2, 65, 66, 67, 68, 69)]
    return pl.DataFrame(
        {
            "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")),
            "a": [1.0, None, 0.0, -2.0, 3.0, None, 0.0, -1.5],
            "b": [2.0, 1.0, None, 0.0, -3.0, 4.0, 0.0, 2.0],
        }
    )


A, B = pl.col("a"), pl.col("b")
EDGE_CASES = {
    "greater, null operand": (A > B).cast(pl.Float64),
    "and, Kleene": ((A > 0) & (B > 0)).cast(pl.Float64),
    "or, Kleene": ((A > 0) | (B > 0)).cast(pl.Float64),
    "when null predicate": pl.when(A == 0).then(pl.lit(7.0)).otherwise(B),
    "division by zero": A / B,
    "log out of domain": A.log(),
    "sqrt of negative": A.sqrt(),
    "power": A.pow(2) + B.pow(3),
    "exp": A.exp() - B.exp(),
    "clip": A.clip(lower_bound=0.0),
    "max_horizontal skips null": pl.max_horizontal(A, B),
    "min_horizontal skips null": pl.min_horizontal(A, B),
    "coalesce": pl.coalesce(A, B),
    "fill_null": A.fill_null(-9.0),
    "is_null": A.is_null().cast(pl.Float64),
    "modulo of negative": (A - 10) % 3,
    "sign": A.sign().cast(pl.Float64),
    "abs and negate": -(A.abs()),
    "sin cos": A.sin() + B.cos(),
    "window with a null": A.rolling_mean(2, min_samples=2),
    "window std": B.rolling_std(3, min_samples=3),
    "window sum of what is there": A.rolling_sum(3, min_samples=2),
    "window max min": B.rolling_max(2, min_samples=2) - B.rolling_min(2, min_samples=2),
    "hour minute second weekday": pl.col("ts").dt.hour().cast(pl.Float64) * 3600
    + pl.col("ts").dt.minute().cast(pl.Float64) * 60
    + pl.col("ts").dt.second() / 60
    + pl.col("ts").dt.weekday() * 1e6,
    "elapsed": (pl.col("ts") - pl.col("ts").shift(1)).dt.total_microseconds().cast(pl.Float64),
    "cast to integer truncates": (A * 2.5 - 0.5).cast(pl.Int64).cast(pl.Float64),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_null_and_edge_semantics_follow_polars(name: str) -> None:
    """Each expression alone (the last row on NumPy scalars) and shifted (computed on several rows as
    arrays, read three rows back), on every prefix of a frame with nulls, zeros and negatives."""
    expr = EDGE_CASES[name]
    frame = _edge_frame()
    exprs = [expr.alias("alone"), expr.shift(2).alias("shifted")]
    program = LastRowProgram(exprs, ["alone", "shifted"])
    assert program.unsupported == []
    for end in range(program.rows, frame.height + 1):
        window = frame.head(end)
        got = program.run(_columns(window.tail(program.rows), program.columns))
        want = _polars_last(window, exprs)
        assert np.allclose(got, want, equal_nan=True, rtol=1e-12, atol=0), (name, end, got, want)


def test_an_unknown_node_is_left_to_polars() -> None:
    exprs = [
        pl.col("close").cum_sum(),
        pl.col("close").rolling_mean(3, min_samples=1),
        pl.col("ts").dt.minute() * 60,  # Int8 arithmetic: Polars wraps around
        pl.col("close") * 2,
    ]
    program = LastRowProgram(exprs, ["cum", "partial", "int8", "twice"])
    assert program.unsupported == ["cum", "partial", "int8"] and program.names == ["twice"]


def test_too_few_bars_cannot_be_evaluated() -> None:
    program = LastRowProgram([pl.col("close").rolling_mean(5, min_samples=5)], ["mean"])
    with pytest.raises(NotEvaluable, match="need 5"):
        program.run({"close": np.arange(4.0)})


def test_a_short_window_is_computed_by_polars_with_its_nulls() -> None:
    candles = random_candles(600, seed=8)
    names = [s.name for s in SPECS]
    row = online_row(candles, NO_ARTICLES, CATALOG, CONTEXT, names)
    want = feature_frame(candles, SPECS).collect().tail(1)
    assert row.select(names).equals(want.select(names))
    assert row["vol_cc_ann_w1380"][0] is None  # its lookback is longer than the window


def test_a_market_feature_with_a_partial_window_is_computed_by_polars_inside_the_row() -> None:
    partial = FeatureSpec(
        "partial_mean",
        "returns",
        "Mean close of up to 3 bars (test).",
        "price",
        3,
        expr=pl.col("close").rolling_mean(3, min_samples=1).alias("partial_mean"),
        silver="silver.returns",
    )
    catalog = Catalog([*(s for s in SPECS if s.name in ("ret_log_w1", "rsi_w14")), partial])
    candles = random_candles(400, seed=2)
    row = online_row(candles, NO_ARTICLES, catalog, CONTEXT)
    want = feature_frame(candles, list(catalog)).collect().tail(1)
    assert row.select(catalog.names()).equals(want.select(catalog.names()))


def test_a_feature_that_disagrees_with_polars_on_first_use_is_left_to_polars(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = Catalog(s for s in SPECS if s.name in ("ret_log_w1", "ret_log_w2"))
    plan = online_module._Plan(catalog, CONTEXT, None)
    wrong = [pl.col("close") * 3, next(s.expr for s in SPECS if s.name == "ret_log_w2")]
    plan.program = LastRowProgram(wrong, ["ret_log_w1", "ret_log_w2"])  # as if NumPy misread ret_log_w1
    candles = random_candles(50, seed=3)
    with caplog.at_level(logging.WARNING):
        row = plan.row(candles, NO_ARTICLES)
    want = feature_frame(candles, list(catalog)).collect().tail(1)
    assert row.select(catalog.names()).equals(want.select(catalog.names()))
    assert plan.program.unsupported == ["ret_log_w1"] and plan.program.names == ["ret_log_w2"]
    assert "ret_log_w1" in caplog.text
    again = plan.row(candles.head(49), NO_ARTICLES)
    assert again.select(catalog.names()).equals(
        feature_frame(candles.head(49), list(catalog)).collect().tail(1).select(catalog.names())
    )
