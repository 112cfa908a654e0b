"""Feast objects built from the feature catalog (pure: no I/O; Feast is imported lazily by the callers).

Time semantics: a gold row of bar ``ts`` is known at the bar's close, so its Feast event timestamp is
``ts + bar length`` (:data:`EVENT_TS`); a point-in-time join at a bar's close returns that bar's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from spxcast.features.catalog import NEWS_GROUP, Catalog

ENTITY = "series"
"""Entity (and join key): one instrument series, ``"{instrument}:{granularity}"``."""
EVENT_TS = "event_ts"
BAR_TS = "bar_ts"
MARKET_VIEW = "market_features"
NEWS_VIEW = "news_signals"
PUSH_SOURCE = "live_features"
GOLD_SOURCE = "gold_features"


def series_key(instrument: str, granularity: str) -> str:
    return f"{instrument}:{granularity}"


@dataclass(frozen=True)
class ViewColumns:
    """Catalog features per feature view, in catalog order."""

    market: tuple[str, ...]
    news: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.market + self.news


def view_columns(catalog: Catalog) -> ViewColumns:
    return ViewColumns(
        market=tuple(s.name for s in catalog if s.group != NEWS_GROUP),
        news=tuple(s.name for s in catalog if s.group == NEWS_GROUP),
    )


def feast_objects(catalog: Catalog, gold_parquet: str, ttl: timedelta) -> list[Any]:
    """Entity, batch source, push source and the two feature views over ``gold_parquet``.

    ``ttl``: how long a row stays valid after its event time in point-in-time joins (a few bars: a bar
    with no row of its own, such as a weekend, gets no features rather than stale ones).
    """
    from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
    from feast.types import Float32, UnixTimestamp

    columns = view_columns(catalog)
    entity = Entity(name=ENTITY, join_keys=[ENTITY], value_type=ValueType.STRING)
    gold = FileSource(name=GOLD_SOURCE, path=gold_parquet, timestamp_field=EVENT_TS)
    push = PushSource(name=PUSH_SOURCE, batch_source=gold)
    views = [
        FeatureView(
            name=name,
            entities=[entity],
            ttl=ttl,
            schema=[Field(name=BAR_TS, dtype=UnixTimestamp)] + [Field(name=c, dtype=Float32) for c in names],
            source=push,
            online=True,
        )
        for name, names in ((MARKET_VIEW, columns.market), (NEWS_VIEW, columns.news))
        if names
    ]
    return [entity, gold, push, *views]
