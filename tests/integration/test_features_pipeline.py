"""Features end to end with the real neighbours: the synthetic market and the news pipeline feed
`spxcast features build`; gold.features holds every catalog feature (market + news) and labels."""

from __future__ import annotations

import numpy as np
import polars as pl

from spxcast.config import Settings, load_settings
from spxcast.features.catalog import default_catalog, feature_context
from spxcast.features.online import online_row
from spxcast.lake import Lake
from spxcast.lake.tables import BAR_KEY
from spxcast.pipeline.runner import run_task
from spxcast.pipeline.tasks.features import build_features
from spxcast.sentiment import scorer_id
from spxcast.sentiment.cache import scored_articles

UPSTREAM = (
    "ingest_market",
    "validate_market",
    "ingest_news",
    "validate_news",
    "silver_news_sentiment",
    "gold_news_signals",
)


def test_gold_features_from_the_synthetic_market_and_news(settings: Settings) -> None:
    settings = load_settings(
        home=settings.home,
        **{"market.synthetic.start": "2024-01-08", "market.synthetic.days": 4, "pipeline.workers": 1},
    )
    for task in UPSTREAM:
        status, payload = run_task(settings, task, "integration")
        assert status == "succeeded", (task, payload)
    results = build_features(settings, "integration")
    lake = Lake.from_settings(settings)
    gold = lake.read("gold.features")
    catalog = default_catalog(feature_context(settings))
    assert gold.columns == [*BAR_KEY, *catalog.names(), "target_ret_30m_pct", "target_dir_30m", "label_ok"]
    assert all(gold.schema[s.name] == s.dtype for s in catalog)
    candles = lake.read("bronze.candles")
    assert gold.height == candles.height == results["gold_labels"]["rows"]
    news_columns = catalog.names("news")
    assert news_columns
    assert gold.select(news_columns).null_count().sum_horizontal().item() == 0
    # Labels by time: the last 30 minutes before the data ends (and each daily break) have none.
    assert 0.9 < gold["label_ok"].mean() < 1.0
    assert gold.filter(pl.col("ts") > candles["ts"].max() - pl.duration(minutes=30))["label_ok"].sum() == 0
    # The serving path reproduces the whole gold row of the last bar from the candles and scored news.
    articles = scored_articles(lake, scorer_id(settings.sentiment))
    row = online_row(candles.sort("ts"), articles, catalog, feature_context(settings))
    last = gold.sort("ts").tail(1)
    np.testing.assert_allclose(
        row.select(catalog.names()).to_numpy(), last.select(catalog.names()).to_numpy(), rtol=1e-5, atol=1e-6
    )
