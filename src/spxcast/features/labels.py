"""Labels: the forward return over the horizon, found by time, never by row offset.

``target_ret_{H}m_pct = 100 * (close[bar starting at ts + H] / close[ts] - 1)``. The future bar is looked
up by its start time: the bar starting exactly at ``ts + H``; when ``tolerance`` > 0 and no bar starts
exactly there, the latest bar starting in ``[ts + H - tolerance, ts + H)`` (backward first), else the
earliest in ``(ts + H, ts + H + tolerance]`` (forward). Since the tolerance is below H the future bar
always starts after ts. When no bar starts within the tolerance (the
horizon reaches into a weekend, the daily break, a halt or past the data) the label is null and
``label_ok`` false. No bar is ever invented. Labels are built only here.

Horizons in bars (``horizon_bars = N``):
``target_ret_{N}b_pct = 100 * (close[N-th next bar] / close[ts] - 1)`` where the N-th next bar is the bar
N positions later on the instrument's trading calendar
(:mod:`spxcast.sources.market.calendar`): at D, Friday's 1-bar label is Monday's close (the Tuesday after a
Monday holiday on an exchange calendar); it is null only when that bar is missing from the data.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from spxcast.errors import ConfigError
from spxcast.features.build import series_of
from spxcast.lake.tables import BAR_KEY, BAR_KEY_SCHEMA
from spxcast.sources.market.calendar import bar_positions
from spxcast.timeutil import bar_length


def horizon_tag(horizon_minutes: int, horizon_bars: int | None = None) -> str:
    """The horizon's tag in label and lag names: ``30m`` (minutes, by time) or ``2b`` (bars, calendar)."""
    return f"{horizon_minutes}m" if horizon_bars is None else f"{horizon_bars}b"


def label_names(horizon_minutes: int, horizon_bars: int | None = None) -> tuple[str, str]:
    """(return label, direction label) names: ``target_ret_30m_pct`` for a horizon in minutes, or
    ``target_ret_1b_pct`` when the horizon is given in bars (``horizon_bars``, calendar labels)."""
    tag = horizon_tag(horizon_minutes, horizon_bars)
    return f"target_ret_{tag}_pct", f"target_dir_{tag}"


def label_schema(horizon_minutes: int, horizon_bars: int | None = None) -> dict[str, pl.DataType]:
    """The label columns of gold.features and their dtypes."""
    ret, direction = label_names(horizon_minutes, horizon_bars)
    return {ret: pl.Float64(), direction: pl.Int8(), "label_ok": pl.Boolean()}


def make_labels(
    candles: pl.DataFrame,
    horizon_minutes: int,
    tolerance_minutes: float,
    horizon_bars: int | None = None,
    calendar: str = "auto",
) -> pl.DataFrame:
    """Bar key + labels for every bar of ``candles`` (any number of series).

    Parameters
    ----------
    candles : bar key + close; ts = bar start (UTC).
    horizon_minutes : H; the label compares the close of the bar starting at ts + H with close[ts].
    tolerance_minutes : how far from ts + H the future bar's start may be (must be < H).
    horizon_bars : N; when given, the label compares the close of the N-th next bar on the instrument's
        trading calendar with close[ts] instead (``horizon_minutes`` and the tolerance are then unused).
    calendar : calendar name for bar horizons (``auto``: per instrument, see ``resolve_calendar_name``).
    """
    if horizon_bars is not None:
        return _bar_labels(candles, horizon_minutes, horizon_bars, calendar)
    if not 0 <= tolerance_minutes < horizon_minutes:
        raise ConfigError(
            f"label tolerance of {tolerance_minutes} min must be >= 0 and below the horizon "
            f"of {horizon_minutes} min"
        )
    ret, direction = label_names(horizon_minutes)
    horizon = timedelta(minutes=horizon_minutes)
    tolerance = timedelta(minutes=tolerance_minutes)
    frames = [
        _series_labels(series.select(*BAR_KEY, "close"), horizon, tolerance).select(
            *BAR_KEY,
            pl.col("value").alias(ret),
            pl.col("value").sign().cast(pl.Int8).alias(direction),
            pl.col("value").is_not_null().alias("label_ok"),
        )
        for series in series_of(candles)
    ]
    if not frames:
        return pl.DataFrame(schema={**BAR_KEY_SCHEMA, **label_schema(horizon_minutes)})
    return pl.concat(pl.collect_all(frames), how="vertical")


def _series_labels(bars: pl.DataFrame, horizon: timedelta, tolerance: timedelta) -> pl.LazyFrame:
    """One series sorted by ts -> its rows with ``value`` = the labelled return (null when no bar)."""
    targets = bars.lazy().with_columns((pl.col("ts") + horizon).alias("target_ts"))
    future = bars.lazy().select(pl.col("ts").alias("future_ts"), pl.col("close").alias("future_close"))
    joined = targets
    for strategy in ("backward", "forward"):
        joined = (
            joined.join_asof(
                future, left_on="target_ts", right_on="future_ts", strategy=strategy, tolerance=tolerance
            )
            .drop("future_ts", strict=False)
            .rename({"future_close": strategy})
        )
    future_close = pl.coalesce("backward", "forward")
    return joined.with_columns((100 * (future_close / pl.col("close") - 1)).alias("value"))


def _bar_labels(
    candles: pl.DataFrame, horizon_minutes: int, horizon_bars: int, calendar: str
) -> pl.DataFrame:
    """Labels N bars ahead on each series' trading calendar (see the module docstring)."""
    if horizon_bars < 1:
        raise ConfigError(f"horizon_bars must be at least 1, got {horizon_bars}")
    ret, direction = label_names(horizon_minutes, horizon_bars)
    frames = []
    for series in series_of(candles):
        first = series.row(0, named=True)
        position = bar_positions(
            series["ts"].cast(pl.Datetime("us", "UTC")).dt.epoch("us").to_numpy(),
            first["instrument"],
            bar_length(first["granularity"]),
            calendar,
        )
        bars = series.select(*BAR_KEY, "close").with_columns(pl.Series("position", position))
        future = bars.select(
            (pl.col("position") - horizon_bars).alias("position"), pl.col("close").alias("future_close")
        ).unique("position", keep="first", maintain_order=True)
        value = 100 * (pl.col("future_close") / pl.col("close") - 1)
        frames.append(
            bars.join(future, on="position", how="left", maintain_order="left").select(
                *BAR_KEY,
                value.alias(ret),
                value.sign().cast(pl.Int8).alias(direction),
                value.is_not_null().alias("label_ok"),
            )
        )
    if not frames:
        return pl.DataFrame(schema={**BAR_KEY_SCHEMA, **label_schema(horizon_minutes, horizon_bars)})
    return pl.concat(frames, how="vertical")
