"""The table catalog: every logical lake table with its key, write mode and schema.

Bronze and reference tables declare their schema here and every write is checked against it. Silver and
gold tables derive their feature columns from the feature catalog; they declare only their key columns
here and the feature catalog checks the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from spxcast.errors import LakeError

UTC_TS = pl.Datetime("us", "UTC")


def epoch_us(times: pl.Series) -> np.ndarray:
    """Non-null UTC timestamps as int64 microseconds since the epoch (a NumPy view, no query)."""
    return times.cast(UTC_TS).to_numpy().astype(np.int64)


WriteMode = Literal["upsert", "insert_only", "overwrite"]

BAR_KEY = ("instrument", "granularity", "ts")
BAR_KEY_SCHEMA: dict[str, pl.DataType] = {"instrument": pl.Utf8(), "granularity": pl.Utf8(), "ts": UTC_TS}


@dataclass(frozen=True)
class TableSpec:
    """One logical lake table.

    ``write_mode``: ``upsert`` merges on the key and updates a row only when a non-audit column changed
    (so re-ingesting identical data commits nothing new); ``insert_only`` keeps the first version of a key;
    ``overwrite`` replaces the table atomically (derived tables rebuilt from their inputs).
    ``schema`` is complete for declared tables; for derived tables it holds only the key columns and
    ``derived`` is true.
    """

    name: str
    key: tuple[str, ...]
    schema: dict[str, pl.DataType]
    write_mode: WriteMode = "upsert"
    derived: bool = False
    audit_columns: tuple[str, ...] = ("ingested_at",)
    partition_by: tuple[str, ...] = ()
    description: str = ""
    time_column: str | None = "ts"
    nullable: frozenset[str] = field(default_factory=frozenset)

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]


CANDLES = TableSpec(
    name="bronze.candles",
    key=BAR_KEY,
    schema={
        **BAR_KEY_SCHEMA,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Int64(),
        "bid_close": pl.Float64(),
        "ask_close": pl.Float64(),
        "source": pl.Utf8(),
        "ingested_at": UTC_TS,
    },
    nullable=frozenset({"bid_close", "ask_close"}),
    description="Complete candles; ts = bar start (UTC); prices are mid; volume in ticks.",
)

NEWS = TableSpec(
    name="bronze.news",
    key=("article_id",),
    schema={
        "article_id": pl.Utf8(),
        "url": pl.Utf8(),
        "title": pl.Utf8(),
        "summary": pl.Utf8(),
        "domain": pl.Utf8(),
        "language": pl.Utf8(),
        "published_at": UTC_TS,
        "crawled_at": UTC_TS,
        "received_at": UTC_TS,
        "provider": pl.Utf8(),
        "title_key": pl.Utf8(),
        "text_hash": pl.Utf8(),
        "ingested_at": UTC_TS,
    },
    write_mode="insert_only",
    time_column="received_at",
    nullable=frozenset({"summary", "domain", "language", "published_at", "crawled_at"}),
    description=(
        "Articles keyed by a hash of the canonical URL; received_at = when we could first know it; "
        "title_key = hash of the normalised title (near-duplicate detection); text_hash = hash of the "
        "scored text (the key of silver.news_scores)."
    ),
)

QUARANTINE = TableSpec(
    name="bronze.quarantine",
    key=("table", "record_hash"),
    schema={
        "table": pl.Utf8(),
        "record_hash": pl.Utf8(),
        "raw": pl.Utf8(),
        "reasons": pl.List(pl.Utf8()),
        "source": pl.Utf8(),
        "ingested_at": UTC_TS,
    },
    write_mode="insert_only",
    time_column="ingested_at",
    description="Rejected input records (raw JSON) with their reason codes.",
)

SYNTHETIC_EVENTS = TableSpec(
    name="bronze.synthetic_events",
    # event_id alone is unique; received_at in the key lets merges skip files outside the incoming range.
    key=("instrument", "received_at", "event_id"),
    schema={
        "instrument": pl.Utf8(),
        "event_id": pl.Utf8(),
        "received_at": UTC_TS,
        "direction": pl.Int8(),
        "magnitude": pl.Float64(),
        "kind": pl.Utf8(),
    },
    write_mode="upsert",
    audit_columns=(),
    time_column="received_at",
    description=(
        "Events of the synthetic market (news shocks). Synthetic news headlines are written from these; "
        "when the planted signal is on, the market drifts in `direction` from `received_at` on."
    ),
)

SYNTHETIC_ORACLE = TableSpec(
    name="bronze.synthetic_oracle",
    key=("instrument", "granularity", "ts", "horizon_minutes"),
    schema={
        **BAR_KEY_SCHEMA,
        "horizon_minutes": pl.Int32(),
        "oracle_ret_pct": pl.Float64(),
    },
    audit_columns=(),
    description=(
        "Best achievable forecast of the planted component: expected return (percent) from the close of "
        "bar ts to the close H minutes later, given what existed at ts's close. Never a model input."
    ),
)


def _derived(name: str, description: str) -> TableSpec:
    return TableSpec(
        name=name,
        key=BAR_KEY,
        schema=dict(BAR_KEY_SCHEMA),
        write_mode="overwrite",
        derived=True,
        audit_columns=(),
        description=description,
    )


NEWS_SCORES = TableSpec(
    name="silver.news_scores",
    key=("text_hash", "scorer_id"),
    schema={
        "text_hash": pl.Utf8(),
        "scorer_id": pl.Utf8(),
        "p_pos": pl.Float32(),
        "p_neg": pl.Float32(),
        "p_neu": pl.Float32(),
        "score": pl.Float32(),
        "confidence": pl.Float32(),
        "scored_at": UTC_TS,
    },
    write_mode="insert_only",
    audit_columns=("scored_at",),
    time_column=None,
    description="Sentiment per (text hash, scorer); score = p_pos - p_neg; nothing is scored twice.",
)

GOLD_FEATURES = _derived("gold.features", "Every catalog feature + labels + label_ok; the training table.")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        CANDLES,
        NEWS,
        QUARANTINE,
        SYNTHETIC_EVENTS,
        SYNTHETIC_ORACLE,
        NEWS_SCORES,
        _derived("silver.returns", "Returns, lags, calendar and session features per bar."),
        _derived("silver.technical", "Technical indicators per bar."),
        _derived("silver.volatility", "Volatility estimators per bar."),
        _derived("silver.microstructure", "Microstructure and rolling shape-statistics features per bar."),
        _derived("gold.market_features", "Every market feature of the catalog, joined."),
        _derived("gold.news_signals", "Point-in-time news signals per bar."),
        GOLD_FEATURES,
    )
}


def table(name: str) -> TableSpec:
    """Look up a table by its ``layer.name``."""
    try:
        return TABLES[name]
    except KeyError as exc:
        known = ", ".join(sorted(TABLES))
        raise LakeError(f"unknown lake table {name!r}; known tables: {known}") from exc
