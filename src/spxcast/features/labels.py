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

import numpy as np
import polars as pl

from spxcast.errors import ConfigError
from spxcast.features.build import series_of
from spxcast.lake.tables import BAR_KEY, BAR_KEY_SCHEMA, epoch_us
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
    frames = [
        _label_frame(
            series,
            horizon_returns(
                series["close"].to_numpy(),
                horizon_ends(epoch_us(series["ts"]), horizon_minutes, tolerance_minutes),
            ),
            ret,
            direction,
        )
        for series in series_of(candles)
    ]
    if not frames:
        return pl.DataFrame(schema={**BAR_KEY_SCHEMA, **label_schema(horizon_minutes)})
    return pl.concat(frames, how="vertical")


def horizon_ends(ts_us: np.ndarray, horizon_minutes: int, tolerance_minutes: float) -> np.ndarray:
    """Per bar of ONE series, the row of the bar whose close ends its H-minute return; -1 when none.

    ``ts_us``: the series' bar starts, microseconds since the epoch, sorted and unique. The ending bar is
    the one starting at ``ts + H``; when ``tolerance_minutes`` > 0 and none starts there, the latest
    starting in ``[ts + H - tolerance, ts + H)``, else the earliest in ``(ts + H, ts + H + tolerance]``.
    """
    target = ts_us + horizon_minutes * _MINUTE_US
    tolerance = tolerance_minutes * _MINUTE_US
    last = ts_us.size - 1
    backward = np.searchsorted(ts_us, target, side="right") - 1
    forward = np.searchsorted(ts_us, target, side="left")
    back_ok = (backward >= 0) & (target - ts_us[np.maximum(backward, 0)] <= tolerance)
    forward_ok = (forward <= last) & (ts_us[np.minimum(forward, last)] - target <= tolerance)
    return np.where(back_ok, backward, np.where(forward_ok, forward, -1))


def bar_horizon_ends(positions: np.ndarray, horizon_bars: int) -> np.ndarray:
    """Per bar of ONE series, the row of the first bar ``horizon_bars`` calendar positions later; -1 when
    that bar is missing. ``positions``: the bars' positions on their trading calendar, in ts order."""
    if not positions.size:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    target = positions + horizon_bars
    found = np.minimum(np.searchsorted(ordered, target, side="left"), ordered.size - 1)
    return np.where(ordered[found] == target, order[found], -1)


def horizon_returns(close: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The labelled return of each bar, ``100 * (close[end] / close - 1)`` (percent), from its ending bar's
    row (:func:`horizon_ends`, :func:`bar_horizon_ends`); NaN where there is none."""
    close = close.astype(np.float64, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100 * (close[np.maximum(ends, 0)] / close - 1)
    return np.where(ends >= 0, value, np.nan)


def _label_frame(series: pl.DataFrame, value: np.ndarray, ret: str, direction: str) -> pl.DataFrame:
    """Bar key + return label, direction label and label_ok of one series (``value``: NaN for none)."""
    labelled = pl.Series(ret, value, dtype=pl.Float64, nan_to_null=True)
    return series.select(BAR_KEY).with_columns(
        labelled, labelled.sign().cast(pl.Int8).alias(direction), labelled.is_not_null().alias("label_ok")
    )


_MINUTE_US = 60_000_000


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
            epoch_us(series["ts"]), first["instrument"], bar_length(first["granularity"]), calendar
        )
        ends = bar_horizon_ends(position, horizon_bars)
        frames.append(_label_frame(series, horizon_returns(series["close"].to_numpy(), ends), ret, direction))
    if not frames:
        return pl.DataFrame(schema={**BAR_KEY_SCHEMA, **label_schema(horizon_minutes, horizon_bars)})
    return pl.concat(frames, how="vertical")
