"""The feature store's I/O: the Feast repo config built in code, the gold export, materialisation,
pushes from the live loop and reads back (online vectors, point-in-time historical retrieval).

Layout under ``<home>/featurestore``: ``registry.db`` (Feast registry), ``gold.parquet`` (the offline
source: gold.features with ``series``, ``bar_ts``, ``event_ts`` = bar close), ``online.db`` (SQLite online
store; with ``live.feature_store = "redis"`` the online store is ``live.redis_url``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.errors import ConfigError
from spxcast.features.catalog import feature_catalog
from spxcast.featurestore.definitions import (
    BAR_TS,
    ENTITY,
    EVENT_TS,
    MARKET_VIEW,
    NEWS_VIEW,
    PUSH_SOURCE,
    feast_objects,
    series_key,
    view_columns,
)
from spxcast.lake import Lake
from spxcast.lake.tables import GOLD_FEATURES
from spxcast.timeutil import bar_length

log = logging.getLogger(__name__)

TTL_BARS = 4
"""A row is valid for this many bars after its close in point-in-time joins."""


def redis_connection_string(url: str) -> str:
    """``redis://host:port/db`` -> Feast's ``host:port,db=N`` form."""
    parsed = urlparse(url)
    if parsed.scheme not in {"redis", "rediss"} or not parsed.hostname:
        raise ConfigError(f"live.redis_url {url!r} must look like redis://HOST:PORT/DB")
    db = (parsed.path or "/0").lstrip("/") or "0"
    extra = ",ssl=true" if parsed.scheme == "rediss" else ""
    auth = f",password={parsed.password}" if parsed.password else ""
    return f"{parsed.hostname}:{parsed.port or 6379},db={db}{auth}{extra}"


class FeatureStoreClient:
    """Feast for the catalog of ``settings`` (one project per home)."""

    def __init__(self, settings: Settings, lake: Lake | None = None) -> None:
        self.settings = settings
        self.lake = lake or Lake.from_settings(settings)
        self.root = Path(settings.home) / "featurestore"
        self.root.mkdir(parents=True, exist_ok=True)
        self.gold_parquet = self.root / "gold.parquet"
        self.catalog = feature_catalog(settings)
        self.columns = view_columns(self.catalog)
        self.bar = bar_length(settings.granularity)
        digest = hashlib.sha256(str(Path(settings.home).resolve()).encode()).hexdigest()[:10]
        self.project = f"spxcast_{digest}"
        self._store: Any = None
        self._views: list[tuple[Any, dict[str, Any]]] | None = None

    # ----- the repo, in code
    def repo_config(self) -> Any:
        from feast.repo_config import RepoConfig

        kind = self.settings.live.feature_store
        if kind == "redis":
            if not self.settings.live.redis_url:
                raise ConfigError("live.feature_store = redis needs live.redis_url (SPXCAST_LIVE__REDIS_URL)")
            online: dict[str, Any] = {
                "type": "redis",
                "connection_string": redis_connection_string(self.settings.live.redis_url),
            }
        else:
            online = {"type": "sqlite", "path": str(self.root / "online.db")}
        return RepoConfig(
            project=self.project,
            provider="local",
            registry=str(self.root / "registry.db"),
            online_store=online,
            offline_store={"type": "dask"},
            entity_key_serialization_version=3,
            repo_path=str(self.root),
        )

    @property
    def store(self) -> Any:
        """The Feast FeatureStore, with the definitions applied (first use imports Feast: seconds)."""
        if self._store is None:
            from feast import FeatureStore

            if not self.gold_parquet.exists():
                self._write_parquet(self._empty())
            store = FeatureStore(config=self.repo_config())
            ttl = TTL_BARS * self.bar
            store.apply(feast_objects(self.catalog, str(self.gold_parquet), ttl))
            self._store = store
        return self._store

    def prepare(self) -> FeatureStoreClient:
        """Import Feast and apply the definitions now (seconds, holding the interpreter), not at the first
        push: a loop calls this before its first bar."""
        self._push_views()
        return self

    # ----- offline: gold export and materialisation
    def _empty(self) -> pl.DataFrame:
        schema: dict[str, pl.DataType] = {
            ENTITY: pl.Utf8(),
            BAR_TS: pl.Datetime("us", "UTC"),
            EVENT_TS: pl.Datetime("us", "UTC"),
        }
        return pl.DataFrame(schema={**schema, **dict.fromkeys(self.columns.all, pl.Float32)})

    def _write_parquet(self, frame: pl.DataFrame) -> None:
        partial = self.gold_parquet.with_suffix(".parquet.partial")
        frame.write_parquet(partial)
        os.replace(partial, self.gold_parquet)  # readers never see a half-written file

    def export_gold(self) -> int:
        """gold.features -> the offline Parquet source (every series); returns rows written."""
        if not self.lake.exists(GOLD_FEATURES.name):
            raise ConfigError(
                "gold.features does not exist yet; build features first (spxcast features build)"
            )
        gold = self.lake.scan(GOLD_FEATURES.name)
        present = set(gold.collect_schema().names())
        frame = gold.select(
            (pl.col("instrument") + ":" + pl.col("granularity")).alias(ENTITY),
            pl.col("ts").alias(BAR_TS),
            # the close of each row's bar: bar length from its own granularity
            pl.col("ts").alias(EVENT_TS),
            pl.col("granularity"),
            *[
                (pl.col(c) if c in present else pl.lit(None)).cast(pl.Float32).alias(c)
                for c in self.columns.all
            ],
        ).collect()
        lengths = {g: bar_length(g) for g in frame["granularity"].unique().to_list()}
        frame = frame.with_columns(
            pl.col(EVENT_TS) + pl.col("granularity").replace_strict(lengths, return_dtype=pl.Duration("us"))
        ).drop("granularity")
        self._write_parquet(frame)
        return frame.height

    def materialize(self) -> dict[str, Any]:
        """Export gold, apply the definitions, load the newest row of every series into the online store."""
        rows = self.export_gold()
        if rows == 0:
            return {"rows": 0, "materialized": False}
        frame = pl.read_parquet(self.gold_parquet, columns=[EVENT_TS])
        start, end = frame[EVENT_TS].min(), frame[EVENT_TS].max()
        with contextlib.redirect_stdout(sys.stderr):  # Feast prints its progress: stdout is spxcast's output
            self.store.materialize(start, end + timedelta(seconds=1))  # type: ignore[operator]
        return {"rows": rows, "materialized": True, "online_store": self.settings.live.feature_store}

    # ----- online: the live loop's pushes, reads back
    def push(self, instrument: str, granularity: str, vectors: pl.DataFrame) -> None:
        """Bars' vectors (``ts`` + features, any subset of the catalog; one row per bar) to the online
        store through the push source's feature views; features not given are pushed as null.

        The online store holds one vector per series, the newest: of a batch only the newest row is
        written (the older ones would be overwritten by it in the same write).

        This is Feast's own online write (its row conversion and the provider's ``online_write_batch``,
        what ``FeatureStore.push`` ends in) with the push source's views resolved once
        (:meth:`prepare`): ``FeatureStore.push`` rebuilds them from the registry and goes through pandas
        on every call, about 135 ms of Python holding the interpreter per one-row push, next to the loop.
        """
        from feast.utils import _convert_arrow_to_proto

        table = (
            vectors.sort("ts")
            .tail(1)
            .select(
                pl.lit(series_key(instrument, granularity)).alias(ENTITY),
                pl.col("ts").alias(BAR_TS),
                (pl.col("ts") + bar_length(granularity)).alias(EVENT_TS),
                *[
                    (pl.col(n) if n in vectors.columns else pl.lit(None))
                    .cast(pl.Float32)
                    .fill_null(np.nan)
                    .alias(n)
                    for n in self.columns.all
                ],
            )
            .to_arrow()
        )
        for view, join_keys in self._push_views():
            rows = _convert_arrow_to_proto(table, view, join_keys)
            self.store.provider.online_write_batch(self.store.config, view, rows, progress=None)

    def _push_views(self) -> list[tuple[Any, dict[str, Any]]]:
        """The feature views fed by the push source, each with its join keys' value types (resolved
        once)."""
        if self._views is None:
            self._views = [
                (view, {c.name: c.dtype.to_value_type() for c in view.entity_columns})
                for view in self.store.list_feature_views()
                if view.stream_source is not None and view.stream_source.name == PUSH_SOURCE
            ]
        return self._views

    def online_vector(
        self, instrument: str, granularity: str, names: Sequence[str] | None = None
    ) -> tuple[datetime, dict[str, float | None]] | None:
        """The newest pushed or materialised vector of a series: its bar start and ``{name: value}``.

        A feature whose stored time is older than the vector's (Feast keeps the previous value when a
        null is pushed) is null at that bar.
        """
        wanted = list(names or self.columns.all)
        refs = [f"{MARKET_VIEW if n in self.columns.market else NEWS_VIEW}:{n}" for n in wanted]
        refs += [f"{view}:{BAR_TS}" for view in (MARKET_VIEW, NEWS_VIEW) if self._has_view(view)]
        found = self.store.get_online_features(
            features=refs,
            entity_rows=[{ENTITY: series_key(instrument, granularity)}],
            full_feature_names=True,
        ).to_dict(include_event_timestamps=True)
        stamps = [found.get(f"{v}__{BAR_TS}__ts", [None])[0] for v in (MARKET_VIEW, NEWS_VIEW)]
        newest = max((s for s in stamps if s), default=None)
        if newest is None:
            return None
        values: dict[str, float | None] = {}
        bar_ts: datetime | None = None
        for name, ref in zip(wanted, refs, strict=False):
            key = ref.replace(":", "__")
            value, stamp = found[key][0], found.get(f"{key}__ts", [None])[0]
            values[name] = None if value is None or stamp != newest or np.isnan(value) else float(value)
        for view in (MARKET_VIEW, NEWS_VIEW):
            stamp = found.get(f"{view}__{BAR_TS}__ts", [None])[0]
            if stamp == newest and found.get(f"{view}__{BAR_TS}", [None])[0] is not None:
                bar_ts = _as_datetime(found[f"{view}__{BAR_TS}"][0])
        if bar_ts is None:
            return None
        return bar_ts, values

    def _has_view(self, view: str) -> bool:
        return bool(self.columns.market if view == MARKET_VIEW else self.columns.news)

    def historical(self, instrument: str, granularity: str, stamps: Sequence[datetime]) -> pl.DataFrame:
        """Point-in-time join at each bar's close: ``ts`` (bar start) + every catalog feature."""
        import pandas as pd

        bar = bar_length(granularity)
        entities = pd.DataFrame(
            {
                ENTITY: series_key(instrument, granularity),
                "event_timestamp": pd.to_datetime([ts + bar for ts in stamps], utc=True),
            }
        )
        refs = [f"{MARKET_VIEW}:{n}" for n in self.columns.market] + [
            f"{NEWS_VIEW}:{n}" for n in self.columns.news
        ]
        frame = self.store.get_historical_features(entity_df=entities, features=refs).to_df()
        out = pl.from_pandas(frame)
        out = out.with_columns(
            (
                pl.col("event_timestamp").dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC")) - bar
            ).alias("ts")
        )
        return out.select("ts", *[pl.col(c).cast(pl.Float32) for c in self.columns.all]).sort("ts")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)
