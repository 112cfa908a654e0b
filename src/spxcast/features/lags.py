"""Lagged horizon returns: the past values of the target's kind, as catalog features built from bars.

The k-th lag at bar t is the H-minute return that ENDED at ``t - (k-1)·H``: the label of the bar that
started at ``t - k·H`` (``100 · (close[t-(k-1)H] / close[t-kH] - 1)``, percent), with the future bar found
by :func:`spxcast.features.labels.make_labels` — the one definition of a horizon return (bar by time, within
the label tolerance). Its window closes at or before bar t, so it is known at t's close: lag 1 ends exactly
at t. Matching is by time, never by row offset; a lag whose starting bar does not exist (weekend, daily
break, halt, before the data) or whose horizon return has no ending bar is null.

Horizons in bars (``context.horizon_bars = N``): the k-th lag at bar t is the N-bar return that ended at
the bar ``(k-1)·N`` positions before t on the instrument's trading calendar
(:func:`spxcast.sources.market.calendar.bar_positions`): the bar-horizon label of the bar ``k·N`` positions
before t. It ends at or before t (lag 1 ends at t), across weekends, holidays and daily breaks alike; it is
null only when that bar, or the bar ending its return, is missing from the data. Names carry the
``{N}b`` tag (``lag1_ret_2b_pct``). Such a lag reads at most the ``k·N + 1`` trailing real bars (positions
grow by at least one per bar), declared as its ``lookback``.

The batch build (:func:`horizon_lags`, a whole series) and the online row (:func:`last_bar_lags`, the
newest bar) take the horizon returns from the same functions as the labels
(:func:`~spxcast.features.labels.horizon_ends`, :func:`~spxcast.features.labels.bar_horizon_ends`,
:func:`~spxcast.features.labels.horizon_returns`); online they run on :func:`lag_rows`, the few bars of the
trailing ``span`` (:attr:`FeatureSpec.span_minutes`, minutes) or ``lookback`` (bars) that can start or end
one of the newest bar's lagged horizons.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from spxcast.features.catalog import LAGS_GROUP, FeatureContext, FeatureSpec
from spxcast.features.labels import (
    bar_horizon_ends,
    horizon_ends,
    horizon_returns,
    horizon_tag,
    label_names,
    make_labels,
)
from spxcast.lake.tables import BAR_KEY, epoch_us
from spxcast.sources.market.calendar import bar_positions
from spxcast.timeutil import bar_length

UNIT = "percent"


def lag_name(horizon_minutes: int, k: int, horizon_bars: int | None = None) -> str:
    """Name of the k-th lagged horizon return: ``lag1_ret_30m_pct`` or, in bars, ``lag1_ret_2b_pct``."""
    return f"lag{k}_ret_{horizon_tag(horizon_minutes, horizon_bars)}_pct"


def lag_span_minutes(context: FeatureContext, k: int) -> float:
    """Minutes of bars before ``ts_t`` the k-th lag reads: back to the start of its horizon window
    (0 for a horizon in bars, whose lags declare a lookback in bars instead)."""
    return 0.0 if context.horizon_bars is not None else float(k * context.horizon_minutes)


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """``context.horizon_lags`` lagged horizon returns (group "lags", computed by :func:`horizon_lags`)."""
    n = context.horizon_bars
    if n is not None:
        return [
            FeatureSpec(
                lag_name(context.horizon_minutes, k, n),
                LAGS_GROUP,
                f"100 * (close[bar {(k - 1) * n} positions back] / close[bar {k * n} positions back] - 1): "
                f"the {n}-bar return that ended {(k - 1) * n} bars before this bar on the "
                f"{context.calendar} trading calendar, i.e. the label of the bar {k * n} positions earlier "
                "(null when that bar or the bar ending its return is missing). Known at the bar's close.",
                UNIT,
                k * n + 1,
            )
            for k in range(1, context.horizon_lags + 1)
        ]
    h = context.horizon_minutes
    return [
        FeatureSpec(
            lag_name(h, k),
            LAGS_GROUP,
            f"100 * (close[t-{(k - 1) * h} min] / close[t-{k * h} min] - 1): the {h}-minute return that "
            f"ended {(k - 1) * h} min before this bar's start, i.e. the label of the bar that started "
            f"{k * h} min earlier (matched by time; null when that bar is missing or its return has no "
            "ending bar). Known at the bar's close.",
            UNIT,
            1,
            span_minutes=lag_span_minutes(context, k),
        )
        for k in range(1, context.horizon_lags + 1)
    ]


def lags_from_labels(
    frame: pl.DataFrame,
    label: str,
    horizon_minutes: int,
    orders: Sequence[int],
    horizon_bars: int | None = None,
    calendar: str = "cfd",
    granularity: str | None = None,
) -> pl.DataFrame:
    """The lags of the given ``orders`` (k) for every row of ``frame``, shifting its ``label``.

    ``frame`` holds ``ts``, ``label`` (the forward horizon return of each bar, null when it has none) and,
    when present, the series key; the k-th lag of row t is ``label`` of the row of the same series with
    ``ts = t - k·H`` exactly (``horizon_bars`` None), or with calendar position ``p_t - k·N`` on
    ``calendar`` for bars of ``granularity`` (the frame's ``granularity`` column when None); null when there
    is no such row. Returns the lag columns only (Float32, named by :func:`lag_name`), in ``frame``'s row
    order.
    """
    keys = [c for c in BAR_KEY if c in frame.columns and c != "ts"]
    single = not keys or all(frame[c].n_unique() == 1 for c in keys)
    parts = [frame] if single else frame.with_row_index("_row").partition_by(keys, maintain_order=True)
    out = {k: np.full(frame.height, np.nan) for k in orders}
    for part in parts:
        if part.is_empty():
            continue
        rows = part["_row"].to_numpy() if "_row" in part.columns else np.arange(part.height)
        ts = epoch_us(part["ts"])
        order = np.argsort(ts, kind="stable")
        ts, rows = ts[order], rows[order]
        if horizon_bars is None:
            coordinate, step = ts, horizon_minutes * 60_000_000
        else:
            bar = bar_length(granularity or part["granularity"][0])
            coordinate, step = bar_positions(ts, "", bar, calendar), horizon_bars
        # Labels are never NaN (a ratio of real closes), so NaN can stand for null here.
        values = part[label].to_numpy().astype(np.float64)[order]
        for k in orders:
            out[k][rows] = _lagged(coordinate, values, k * step)
    return pl.DataFrame(
        [
            pl.Series(lag_name(horizon_minutes, k, horizon_bars), out[k], dtype=pl.Float32, nan_to_null=True)
            for k in orders
        ]
    )


def horizon_lags(
    bars: pl.DataFrame, context: FeatureContext, orders: Sequence[int] | None = None
) -> pl.DataFrame:
    """The lags of the given ``orders`` (default 1 .. ``context.horizon_lags``) of every bar, in row order.

    Parameters
    ----------
    bars : ts (bar start, UTC) and close, with or without the series key (instrument, granularity);
        several series are kept apart by that key. Real bars only, unique per series.
    context : horizon H, label tolerance and number of lags.
    """
    if orders is None:
        orders = range(1, context.horizon_lags + 1)
    # Built from Series rather than queries: the online row calls this on a handful of bars.
    absent = {"instrument": "", "granularity": context.granularity}
    series = pl.DataFrame(
        [
            bars[c] if c in bars.columns else pl.Series(c, [absent[c]] * bars.height, dtype=pl.Utf8)
            for c in (*BAR_KEY, "close")
        ]
    )
    label = label_names(context.horizon_minutes, context.horizon_bars)[0]
    labels = make_labels(
        series,
        context.horizon_minutes,
        context.label_tolerance_minutes,
        context.horizon_bars,
        context.calendar,
    )
    lags = lags_from_labels(
        labels,
        label,
        context.horizon_minutes,
        list(orders),
        context.horizon_bars,
        context.calendar,
        context.granularity,
    )
    if all(labels[c].equals(series[c]) for c in BAR_KEY):  # bars came in the labels' (key) order
        return lags
    keyed = labels.select(BAR_KEY).hstack(lags.get_columns())
    return (
        series.select(BAR_KEY).join(keyed, on=list(BAR_KEY), how="left", maintain_order="left").drop(BAR_KEY)
    )


def _lagged(coordinate: np.ndarray, values: np.ndarray, distance: int) -> np.ndarray:
    """Per row, ``values`` of the row whose ``coordinate`` (sorted) is exactly ``distance`` smaller; NaN
    when there is none."""
    start = coordinate - distance
    index = np.minimum(np.searchsorted(coordinate, start), coordinate.size - 1)
    return np.where(coordinate[index] == start, values[index], np.nan)


def last_bar_lags(
    ts_us: np.ndarray, close: np.ndarray, context: FeatureContext, orders: Sequence[int]
) -> list[float]:
    """The lags ``orders`` of the LAST bar of one series, NaN for null: what :func:`horizon_lags` gives
    that bar on the whole series, from the few bars of :func:`lag_rows`.

    ``ts_us``: the series' bar starts (microseconds since the epoch, sorted, unique); ``close``: their
    closes.
    """
    keep = lag_rows(ts_us, context, orders)
    ts, close = ts_us[keep], close[keep]
    if context.horizon_bars is None:
        coordinate, step = ts, context.horizon_minutes * 60_000_000
        ends = horizon_ends(ts, context.horizon_minutes, context.label_tolerance_minutes)
    else:
        coordinate = bar_positions(ts, "", bar_length(context.granularity), context.calendar)
        step = context.horizon_bars
        ends = bar_horizon_ends(coordinate, step)
    labels = horizon_returns(close, ends)
    return [float(_lagged(coordinate, labels, k * step)[-1]) for k in orders]


def lag_rows(ts_us: np.ndarray, context: FeatureContext, orders: Sequence[int]) -> np.ndarray:
    """The rows of one series (bar starts ``ts_us``, sorted) that the lags ``orders`` of its LAST bar t read.

    Those starting within the label tolerance of ``t - j·H`` for ``j = 0 .. max(orders)``: every start
    ``t - kH`` of a lagged horizon and every bar that may end one; for a horizon in bars, the trailing
    ``max(orders)·N + 1`` bars. The lags of the last of them equal those on the whole series.
    """
    if context.horizon_bars is not None:
        return np.arange(max(0, ts_us.size - max(orders, default=0) * context.horizon_bars - 1), ts_us.size)
    horizon_us = context.horizon_minutes * 60_000_000
    tolerance_us = context.label_tolerance_minutes * 60_000_000
    before = ts_us[-1] - ts_us
    nearest = np.rint(before / horizon_us)
    keep = (np.abs(before - nearest * horizon_us) <= tolerance_us) & (nearest <= max(orders, default=0))
    return np.flatnonzero(keep)
