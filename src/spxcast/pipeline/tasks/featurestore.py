"""Feature-store task: gold.features -> the Feast offline source (Parquet) and online store."""

from __future__ import annotations

from typing import Any

from spxcast.pipeline.context import TaskContext


def materialize(ctx: TaskContext) -> dict[str, Any]:
    """Export gold to the offline source, apply the definitions, load the newest row of every series
    into the online store (SQLite, or Redis with ``live.feature_store = "redis"``)."""
    if ctx.settings.live.feature_store == "none":
        return {"skipped": "live.feature_store = none"}
    from spxcast.featurestore import FeatureStoreClient

    return FeatureStoreClient(ctx.settings, ctx.lake).materialize()
