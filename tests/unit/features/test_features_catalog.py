"""The catalog: size, descriptions, names from parameters, silver assignment, checks on construction."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features_factory import random_candles
from spxcast.errors import SchemaError
from spxcast.features.build import feature_frame, market_specs
from spxcast.features.catalog import (
    MARKET_FAMILIES,
    SILVER_FAMILIES,
    Catalog,
    FeatureContext,
    FeatureSpec,
    feature_name,
    market_catalog,
)
from spxcast.features.docs import catalog_markdown
from spxcast.features.terms import Term, ewm_lookback


def test_market_catalog_has_at_least_104_documented_features() -> None:
    catalog = market_catalog(FeatureContext())
    assert len(catalog) >= 104
    assert catalog.groups() == list(MARKET_FAMILIES)
    for spec in catalog:
        assert len(spec.description) > 30, spec.name
        assert "known " in spec.description.lower(), f"{spec.name}: no time semantics"
        assert spec.unit.strip(), spec.name
        assert spec.dtype == pl.Float32, spec.name
        assert spec.silver in SILVER_FAMILIES, spec.name
        assert spec.group in SILVER_FAMILIES[spec.silver], spec.name


def test_names_come_from_parameters() -> None:
    assert feature_name("vol_parkinson", w=20) == "vol_parkinson_w20"
    assert feature_name("bb_width", w=20, k=2.0) == "bb_width_w20_k2"
    assert feature_name("x", a=0.5) == "x_a0p5"
    names = market_catalog().names()
    assert {"vol_parkinson_w20", "rsi_w14", "ret_log_w30_lag30", "vol_regime_w60_m1380"} <= set(names)


def test_catalog_depends_on_bar_size_and_horizon() -> None:
    m5 = market_catalog(FeatureContext("M5", 30))
    assert "ret_log_w6_lag6" in m5.names()
    hourly = market_catalog(FeatureContext("H1", 60))  # one-bar horizon: its lags are the one-bar lags
    assert len(hourly.names("returns")) == len(market_catalog().names("returns")) - 3
    assert "ret_log_w1_lag1" in hourly.names()
    assert "annualised" in m5.get("vol_cc_ann_w1380").description
    assert "71760" in m5.get("vol_cc_ann_w1380").description  # 358,800 one-minute bars / 5


def test_catalog_rejects_bad_specs() -> None:
    good = market_catalog().get("rsi_w14")
    with pytest.raises(SchemaError, match="twice"):
        Catalog([good, good])
    with pytest.raises(SchemaError, match="reads"):
        Catalog([FeatureSpec("x", "technical", "d", "u", 1, pl.col("vwap"), "silver.technical")])
    with pytest.raises(SchemaError, match=r"expected silver\.volatility"):
        Catalog([FeatureSpec("x", "volatility", "d", "u", 1, pl.col("close"), "silver.technical")])
    with pytest.raises(SchemaError, match="expression"):
        Catalog([FeatureSpec("x", "technical", "d", "u", 1, None, "silver.technical")])


def test_lookbacks_are_derived_from_the_operations() -> None:
    close = Term.col("close")
    assert close.shift(3).rolling_mean(10).lookback == 13
    assert (close.rolling_max(5) - close.shift(7)).lookback == 8
    assert close.wilder(14).lookback == ewm_lookback(1 / 14)
    assert (1 - 1 / 14) ** ewm_lookback(1 / 14) < 1e-8
    with pytest.raises(ValueError, match="look back"):
        close.shift(-1)


def test_docs_page_lists_every_feature() -> None:
    context = FeatureContext()
    catalog = market_catalog(context)
    page = catalog_markdown(catalog, context)
    for name in catalog.names():
        assert f"`{name}`" in page
    assert page.count("\n## ") == len(catalog.groups())


def test_no_feature_is_a_linear_copy_of_another() -> None:
    """Regression of the original system's duplicated columns: no two features correlate above 0.999."""
    specs = market_specs(market_catalog())
    frame = feature_frame(random_candles(12_000, seed=3), specs, cast=False).collect().drop("ts").drop_nulls()
    values = frame.to_numpy()
    assert values.shape[0] > 9000  # more than a week, so calendar features cycle
    correlation = np.corrcoef(values.T)
    upper = np.triu(np.abs(correlation), k=1)
    pairs = [(frame.columns[i], frame.columns[j]) for i, j in zip(*np.nonzero(upper > 0.999), strict=True)]
    assert pairs == []
