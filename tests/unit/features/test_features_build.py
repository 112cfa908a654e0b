"""Silver groups, the gold joins and the validation of gold against the catalog."""

from __future__ import annotations

import polars as pl
import pytest

from features_factory import NEWS_TEST_FEATURES, news_signals_for, random_candles, stub_news_module
from spxcast.errors import DataQualityError, SchemaError
from spxcast.features.build import (
    features_by_series,
    gold_features_frame,
    gold_market_frame,
    market_specs,
    silver_frame,
    validate_features,
)
from spxcast.features.catalog import SILVER_FAMILIES, Catalog, FeatureContext, market_catalog
from spxcast.features.labels import label_schema, make_labels
from spxcast.lake.tables import BAR_KEY

CATALOG = market_catalog(FeatureContext())


@pytest.fixture(scope="module")
def candles() -> pl.DataFrame:
    # Two instruments, deliberately interleaved and out of order.
    a = random_candles(600, seed=1, instrument="SPX500_USD")
    b = random_candles(400, seed=2, instrument="NAS100_USD", with_quotes=False)
    return pl.concat([a, b]).sample(fraction=1.0, shuffle=True, seed=5)


@pytest.fixture(scope="module")
def silver(candles: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {table: silver_frame(candles, CATALOG, table) for table in SILVER_FAMILIES}


def test_silver_tables_partition_the_market_catalog(silver: dict[str, pl.DataFrame]) -> None:
    seen: list[str] = []
    for table, frame in silver.items():
        features = frame.columns[len(BAR_KEY) :]
        assert frame.columns[: len(BAR_KEY)] == list(BAR_KEY)
        assert {CATALOG.get(n).group for n in features} == set(SILVER_FAMILIES[table])
        assert all(frame.schema[n] == pl.Float32 for n in features)
        seen += features
    assert sorted(seen) == sorted(CATALOG.names())


def test_series_are_computed_independently(candles: pl.DataFrame) -> None:
    specs = market_specs(CATALOG)
    together = features_by_series(candles, specs).filter(pl.col("instrument") == "SPX500_USD").sort("ts")
    alone = features_by_series(candles.filter(pl.col("instrument") == "SPX500_USD"), specs).sort("ts")
    assert together.equals(alone)


def test_spread_falls_back_to_corwin_schultz_without_quotes(silver: dict[str, pl.DataFrame]) -> None:
    micro = silver["silver.microstructure"]
    no_quotes = micro.filter(pl.col("instrument") == "NAS100_USD").drop_nulls("spread_cs_bps_w20")
    assert no_quotes.height > 300
    assert (no_quotes["spread_bps"] == no_quotes["spread_cs_bps_w20"]).all()
    quoted = micro.filter(pl.col("instrument") == "SPX500_USD").drop_nulls("spread_cs_bps_w20")
    assert (quoted["spread_bps"] != quoted["spread_cs_bps_w20"]).all()
    assert quoted["spread_bps"].is_between(0.9, 3.1).all()  # the factory quotes 1-3 bps spreads


def test_duplicate_bars_are_refused(candles: pl.DataFrame) -> None:
    with pytest.raises(DataQualityError, match="2 bars share a ts"):
        silver_frame(pl.concat([candles, candles.head(2)]), CATALOG, "silver.technical")


def test_gold_market_frame_matches_the_catalog(
    silver: dict[str, pl.DataFrame], candles: pl.DataFrame
) -> None:
    gold = gold_market_frame(list(silver.values()), CATALOG)
    assert gold.columns == [*BAR_KEY, *CATALOG.names()]
    assert gold.height == candles.height
    assert all(gold.schema[s.name] == s.dtype for s in CATALOG)
    with pytest.raises(DataQualityError, match="different bars"):
        gold_market_frame([silver["silver.returns"], silver["silver.technical"].head(10)], CATALOG)


def test_validation_refuses_missing_extra_and_mistyped_columns(silver: dict[str, pl.DataFrame]) -> None:
    gold = gold_market_frame(list(silver.values()), CATALOG)
    with pytest.raises(SchemaError, match=r"missing \['rsi_w14'\]"):
        validate_features(gold.drop("rsi_w14"), CATALOG, {}, "gold")
    with pytest.raises(SchemaError, match=r"not in the catalog \['mystery'\]"):
        validate_features(gold.with_columns(pl.lit(1.0).alias("mystery")), CATALOG, {}, "gold")
    with pytest.raises(SchemaError, match="rsi_w14"):
        validate_features(gold.with_columns(pl.col("rsi_w14").cast(pl.Float64)), CATALOG, {}, "gold")


def test_gold_features_joins_news_and_labels(silver: dict[str, pl.DataFrame], candles: pl.DataFrame) -> None:
    catalog = Catalog([*CATALOG, *stub_news_module().specs(FeatureContext())])  # type: ignore[attr-defined]
    market = gold_market_frame(list(silver.values()), CATALOG)
    news = news_signals_for(candles).head(candles.height - 5)  # some bars without a news row
    labels = make_labels(candles, 30, 0.0)
    gold = gold_features_frame(market, news, labels, catalog, label_schema(30))
    assert gold.columns == [*BAR_KEY, *catalog.names(), *label_schema(30)]
    assert gold.schema[NEWS_TEST_FEATURES[0]] == pl.Float32
    assert gold[NEWS_TEST_FEATURES[0]].null_count() == 5
    assert gold["label_ok"].sum() == labels["label_ok"].sum() > 0
    with pytest.raises(SchemaError, match="lacks the catalog's news features"):
        gold_features_frame(market, news.drop(NEWS_TEST_FEATURES[1]), labels, catalog, label_schema(30))
