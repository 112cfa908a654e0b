"""Staged plans: shared subexpressions computed once give exactly the plain expressions' values."""

from __future__ import annotations

import polars as pl

from features_factory import random_candles
from spxcast.features.build import market_specs, with_bar_columns
from spxcast.features.catalog import FeatureContext, market_catalog
from spxcast.features.plans import StagedPlan, evaluate, staged_plan

SPECS = market_specs(market_catalog(FeatureContext()))


def test_the_market_catalog_stages_and_every_row_equals_the_plain_expressions() -> None:
    bars = with_bar_columns(random_candles(2500, seed=3, halts=4))
    plan = staged_plan([s.expr.cast(s.dtype) for s in SPECS if s.expr is not None], [s.name for s in SPECS])
    assert plan.staged and len(plan.stages) > 1  # shared subexpressions exist and are layered
    staged = plan.lazy(bars, last_only=False).collect()
    plain = StagedPlan(plan.plain).lazy(bars, last_only=False).collect()
    assert staged.columns == [s.name for s in SPECS]
    assert staged.equals(plain)


def test_a_staged_plan_that_disagrees_on_first_use_falls_back_to_the_plain_expressions() -> None:
    plain = [(pl.col("close") * 2).alias("twice")]
    wrong = StagedPlan(
        plain, stages=[[(pl.col("close") * 3).alias("s")]], finals=[pl.col("s").alias("twice")]
    )
    frame = pl.DataFrame({"close": [1.0, 2.0, 3.0]})
    (row,) = evaluate([(wrong, frame)])
    assert row.row(0) == (6.0,)
    assert not wrong.staged and wrong.checked
