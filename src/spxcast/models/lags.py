"""Lagged horizon returns: what the AR model and the persistence baseline read.

The k-th lag at bar t is the H-minute return that ENDED at ``t - (k-1)·H``: the label of the bar that
started at ``t - k·H`` (``100 · (close[t-(k-1)H] / close[t-kH] - 1)``, percent). Its window closes at or
before bar t, so it is known at t's close: lag 1 ends exactly at t. Matching is by time, never by row
offset; a lag whose bar does not exist (or has no label) is null.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

KEY = ("instrument", "granularity")


def lag_column(horizon_minutes: int, k: int) -> str:
    """Name of the k-th lagged horizon return column (``lag1_ret_30m_pct``)."""
    return f"lag{k}_ret_{horizon_minutes}m_pct"


def add_horizon_lags(frame: pl.DataFrame, target: str, horizon_minutes: int, n_lags: int) -> pl.DataFrame:
    """Return ``frame`` with ``n_lags`` lagged horizon returns appended (Float32, percent).

    Parameters
    ----------
    frame : gold-like frame with the bar key and ``target`` (forward return over H minutes, percent).
    target : the label column.
    horizon_minutes : H.
    n_lags : how many lags (1 = the return ending at t).
    """
    keys = [c for c in KEY if c in frame.columns]
    source = frame.select([*keys, "ts", target])
    lags = source.select([*keys, "ts"])
    for k in range(1, n_lags + 1):
        shifted = source.select(
            *keys,
            (pl.col("ts") + timedelta(minutes=horizon_minutes * k)).alias("ts"),
            pl.col(target).cast(pl.Float32).alias(lag_column(horizon_minutes, k)),
        ).unique(subset=[*keys, "ts"], keep="first")
        lags = lags.join(shifted, on=[*keys, "ts"], how="left", maintain_order="left")
    # ``lags`` has frame's rows in frame's order (left joins on unique right keys): stack without copying.
    return frame.hstack(lags.drop([*keys, "ts"]).get_columns())
