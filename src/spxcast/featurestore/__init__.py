"""The Feast feature store, defined in code from the feature catalog (no YAML): entity = instrument series,
feature views for market features and news signals, offline source = gold.features (exported to Parquet),
online store SQLite (default) or Redis, and a push source the live loop writes to.

Nothing on the request path imports Feast: replicas keep the newest vectors in memory
(:class:`spxcast.serving.live.features.LiveFeatureSource`)."""

from spxcast.featurestore.definitions import MARKET_VIEW, NEWS_VIEW, PUSH_SOURCE, series_key
from spxcast.featurestore.store import FeatureStoreClient

__all__ = ["MARKET_VIEW", "NEWS_VIEW", "PUSH_SOURCE", "FeatureStoreClient", "series_key"]
