"""Horizon lags as catalog features: the k-th lag at t is the label of the bar that started at t - kH."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from features_factory import random_candles
from spxcast.features.catalog import FeatureContext
from spxcast.features.labels import label_names, make_labels
from spxcast.features.lags import horizon_lags, lag_name

CONTEXT = FeatureContext("M1", 30, horizon_lags=3, label_tolerance_minutes=2.0)


def test_lags_match_a_naive_lookup_by_time_across_gaps_and_series() -> None:
    spx = random_candles(4000, start=datetime(2024, 1, 5, 18, 0, tzinfo=UTC), seed=2, halts=6)
    nas = random_candles(3000, start=datetime(2024, 1, 5, 19, 0, tzinfo=UTC), seed=3, instrument="NAS100_USD")
    bars = pl.concat([spx, nas]).sample(fraction=1.0, shuffle=True, seed=1)  # any row order
    lags = horizon_lags(bars, CONTEXT)
    assert lags.columns == [lag_name(30, k) for k in (1, 2, 3)]
    assert all(dtype == pl.Float32 for dtype in lags.dtypes)
    label = label_names(30)[0]
    labels = {
        (r["instrument"], r["ts"]): r[label]
        for r in make_labels(bars, 30, CONTEXT.label_tolerance_minutes).iter_rows(named=True)
    }
    rows = bars.select("instrument", "ts").hstack(lags.get_columns())
    checked = 0
    for r in rows.sample(400, seed=4).iter_rows(named=True):
        for k in (1, 2, 3):
            want = labels.get((r["instrument"], r["ts"] - timedelta(minutes=30 * k)))
            got = r[lag_name(30, k)]
            if want is None:
                assert got is None, (r, k)
            else:
                assert np.float32(want) == got, (r, k)
                checked += 1
    assert checked > 800
    # Nulls after every gap: no lag where the bar that would start it does not exist.
    assert 0 < lags[lag_name(30, 3)].null_count() < bars.height / 4
