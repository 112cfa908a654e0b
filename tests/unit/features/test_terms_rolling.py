"""Term.rolling_median takes Polars' null-free kernel; its values must equal the plain rolling median."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from spxcast.features.terms import Term


@pytest.mark.parametrize("window", [1, 4, 5, 30])
def test_rolling_median_equals_polars_on_nulls_anywhere(window: int) -> None:
    rng = np.random.default_rng(window)
    values = rng.normal(size=400)
    nulls = np.zeros(400, dtype=bool)
    nulls[:7] = True  # leading history, as every term with a lookback has
    nulls[rng.choice(400, 12, replace=False)] = True  # and some in the middle
    frame = pl.DataFrame({"x": values}).with_columns(
        pl.when(pl.Series(nulls)).then(None).otherwise(pl.col("x")).alias("x")
    )
    got = frame.select(Term.col("x").rolling_median(window).expr.alias("m"))["m"]
    expected = frame.select(pl.col("x").rolling_median(window, min_samples=window).alias("m"))["m"]
    assert got.null_count() > 7
    assert got.equals(expected, null_equal=True)
