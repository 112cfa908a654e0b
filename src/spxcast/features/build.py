"""Pure builders of the feature tables: silver groups, gold joins, validation, and the online path.

Batch and online use the same expressions from the catalog: :func:`feature_frame` evaluates them on a
series of bars (full history in batch); :mod:`spxcast.features.online` evaluates them for the newest bar
from the trailing bars they need. Several series (instrument, granularity) are computed independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from spxcast.errors import DataQualityError, SchemaError
from spxcast.features.catalog import BAR_COLUMNS, LAGS_GROUP, NEWS_GROUP, Catalog, FeatureSpec
from spxcast.lake.tables import BAR_KEY, BAR_KEY_SCHEMA, GOLD_FEATURES

SERIES_KEY = ("instrument", "granularity")
_OPTIONAL_COLUMNS = {"bid_close": pl.Float64(), "ask_close": pl.Float64()}


def market_specs(catalog: Catalog, silver: str | None = None) -> list[FeatureSpec]:
    """Specs with an expression (market features), optionally only those of one silver table."""
    return [s for s in catalog if s.expr is not None and (silver is None or s.silver == silver)]


def with_bar_columns(frame: pl.DataFrame, what: str = "bars") -> pl.DataFrame:
    """Check a bar frame has the bar columns (adding absent optional quotes as nulls)."""
    for name, dtype in _OPTIONAL_COLUMNS.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what}: missing bar columns {missing}; got {frame.columns}")
    return frame


def feature_frame(
    bars: pl.DataFrame, specs: Sequence[FeatureSpec], keep: Sequence[str] = ("ts",), cast: bool = True
) -> pl.LazyFrame:
    """Features of ONE series of bars (sorted by ts, real bars only), one lazy ``select``.

    Row t of the result depends only on rows <= t of ``bars``. ``cast`` casts each feature to its
    declared dtype (gold's); without it the expressions' own Float64 values are returned.
    """
    bars = with_bar_columns(bars, "feature input")
    columns = [s.expr.cast(s.dtype) if cast else s.expr for s in specs if s.expr is not None]
    return bars.lazy().sort("ts").select(*keep, *columns)


def series_of(candles: pl.DataFrame) -> list[pl.DataFrame]:
    """Split candles into (instrument, granularity) series, in key order, each sorted by ts.

    Concatenating the results of per-series computations in this order gives a frame sorted by the bar
    key without sorting strings. Raises when a series has two bars with the same ts.
    """
    if candles.is_empty():
        return []
    parts = candles.partition_by(list(SERIES_KEY), as_dict=True)
    series = [parts[key].sort("ts") for key in sorted(parts)]
    for part in series:
        duplicated = part.height - part["ts"].n_unique()
        if duplicated:
            first = part.row(0, named=True)
            raise DataQualityError(
                f"candles of {first['instrument']} {first['granularity']}: {duplicated} bars share a ts; "
                "the bar key (instrument, granularity, ts) must be unique"
            )
    return series


def features_by_series(candles: pl.DataFrame, specs: Sequence[FeatureSpec]) -> pl.DataFrame:
    """Bar key + the given features for every series of ``candles``, sorted by the bar key."""
    candles = with_bar_columns(candles, "candles")
    lazies = [feature_frame(series, specs, keep=BAR_KEY) for series in series_of(candles)]
    if not lazies:
        return pl.DataFrame(schema={**BAR_KEY_SCHEMA, **{s.name: s.dtype for s in specs}})
    return pl.concat(pl.collect_all(lazies), how="vertical")


def silver_frame(candles: pl.DataFrame, catalog: Catalog, silver: str) -> pl.DataFrame:
    """One silver table: bar key + the features the catalog assigns to ``silver``."""
    specs = market_specs(catalog, silver)
    if not specs:
        raise SchemaError(f"the feature catalog assigns no feature to {silver}")
    return features_by_series(candles, specs)


def validate_features(
    frame: pl.DataFrame, catalog: Catalog, extra: Mapping[str, pl.DataType], what: str
) -> pl.DataFrame:
    """Check ``frame`` holds exactly bar key + every catalog feature (declared dtype) + ``extra`` columns.

    Returns the frame with columns in that order.
    """
    expected: dict[str, pl.DataType] = {**BAR_KEY_SCHEMA, **{s.name: s.dtype for s in catalog}, **extra}
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in expected]
    wrong = {
        c: f"expected {t}, got {frame.schema[c]}"
        for c, t in expected.items()
        if c in frame.columns and frame.schema[c] != t
    }
    if missing or unexpected or wrong:
        raise SchemaError(
            f"{what} does not match the feature catalog: missing {missing}, not in the catalog {unexpected}, "
            f"wrong dtypes {wrong}"
        )
    return frame.select(list(expected))


def _same_bars(left: pl.DataFrame, right: pl.DataFrame) -> bool:
    return left.height == right.height and left.select(BAR_KEY).equals(right.select(BAR_KEY))


def _side_by_side(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.hstack(frame.drop(BAR_KEY))
    return joined


def join_on_bar_key(frames: Sequence[pl.DataFrame], what: str) -> pl.DataFrame:
    """Put frames that cover the same bars side by side, aligned on the bar key; raise when bars differ.

    Frames built from the same candles arrive in the same row order and are aligned without a join;
    otherwise they are sorted by the bar key first.
    """
    if not all(_same_bars(frames[0], f) for f in frames[1:]):
        frames = [f.sort(list(BAR_KEY)) for f in frames]
        if not all(_same_bars(frames[0], f) for f in frames[1:]):
            raise DataQualityError(
                f"{what}: the inputs cover different bars (rows {[f.height for f in frames]}); "
                "rebuild them from the same candles"
            )
    return _side_by_side(frames)


def left_join_on_bar_key(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    """``left`` LEFT JOIN ``right`` on the bar key (at most one right row per bar).

    When both hold the same bars in the same order the columns are put side by side (same result,
    no hash join).
    """
    if _same_bars(left, right):
        return _side_by_side([left, right])
    return left.join(right, on=list(BAR_KEY), how="left", validate="1:1")


def gold_market_frame(silver_frames: Sequence[pl.DataFrame], catalog: Catalog) -> pl.DataFrame:
    """gold.market_features: the silver groups joined on the bar key, checked against the market catalog."""
    joined = join_on_bar_key(silver_frames, "gold.market_features")
    return validate_features(joined, catalog, {}, "gold.market_features")


def gold_features_frame(
    market: pl.DataFrame,
    news_signals: pl.DataFrame,
    labels: pl.DataFrame,
    catalog: Catalog,
    label_schema: Mapping[str, pl.DataType],
    lags: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """gold.features: market features LEFT JOIN news signals LEFT JOIN horizon lags LEFT JOIN labels.

    All joins are on the bar key. Bars without a news-signal row get null news features; bars without a
    label row get ``label_ok`` false. News and lag columns are cast to the catalog's dtypes. ``lags``
    (bar key + the catalog's lag features) may be omitted only when the catalog has none.
    """
    lag_specs = [s for s in catalog if s.group == LAGS_GROUP]
    if lag_specs:
        if lags is None:
            raise SchemaError("gold.features: the catalog has horizon lags; pass the lag frame")
        missing_lags = [s.name for s in lag_specs if s.name not in lags.columns]
        if missing_lags:
            raise SchemaError(f"the lag frame lacks the catalog's lag features {missing_lags}")
        market = left_join_on_bar_key(
            market, lags.select(*BAR_KEY, *(pl.col(s.name).cast(s.dtype) for s in lag_specs))
        )
    news_specs = [s for s in catalog if s.group == NEWS_GROUP]
    missing = [s.name for s in news_specs if s.name not in news_signals.columns]
    if missing:
        raise SchemaError(
            f"gold.news_signals lacks the catalog's news features {missing}; got {news_signals.columns}"
        )
    news = news_signals.select(*BAR_KEY, *(pl.col(s.name).cast(s.dtype) for s in news_specs))
    # validate_features puts the columns in catalog order (market, news, lags) whatever the join order.
    frame = left_join_on_bar_key(left_join_on_bar_key(market, news), labels).with_columns(
        pl.col("label_ok").fill_null(False)
    )
    return validate_features(frame, catalog, label_schema, GOLD_FEATURES.name)
