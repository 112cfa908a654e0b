"""Returns and lags: log returns over 1 to 360 bars, lagged one-bar returns, lagged horizon returns.

All in percent log-return units (``100 * ln(close_t / close_{t-k})``), known at the bar's close.
"""

from __future__ import annotations

from spxcast.features.catalog import FeatureContext, FeatureSpec
from spxcast.features.terms import ACROSS_GAPS, KNOWN_AT_CLOSE, log_return, market_spec
from spxcast.timeutil import horizon_bars

GROUP = "returns"
WINDOWS = (1, 2, 3, 5, 10, 15, 30, 60, 120, 240, 360)
ONE_BAR_LAGS = (1, 2, 3, 4, 5)
HORIZON_LAGS = (1, 2, 3)
UNIT = "percent (log return x 100)"


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """Return features; the horizon lags depend on the forecast horizon in bars."""
    out = [
        market_spec(
            GROUP,
            100 * log_return(w),
            UNIT,
            f"100 * ln(close_t / close_(t-{w})): log return over the last {w} real bars. "
            f"{KNOWN_AT_CLOSE} {ACROSS_GAPS}",
            "ret_log",
            w=w,
        )
        for w in WINDOWS
    ]
    out += [
        market_spec(
            GROUP,
            100 * log_return(1).shift(lag),
            UNIT,
            f"100 * ln(close_(t-{lag}) / close_(t-{lag + 1})): the one-bar log return {lag} bars ago. "
            f"{KNOWN_AT_CLOSE} {ACROSS_GAPS}",
            "ret_log",
            w=1,
            lag=lag,
        )
        for lag in ONE_BAR_LAGS
    ]
    h = horizon_bars(context.horizon_minutes, context.granularity)
    if h == 1:  # one-bar horizon: its lags are the one-bar lags above
        return out
    out += [
        market_spec(
            GROUP,
            100 * log_return(h).shift(k * h),
            UNIT,
            f"100 * ln(close_(t-{k * h}) / close_(t-{(k + 1) * h})): the log return over the horizon "
            f"({h} bars = {context.horizon_minutes} min) that ended {k} horizon(s) ago - the past value "
            f"of the target's kind. {KNOWN_AT_CLOSE} {ACROSS_GAPS}",
            "ret_log",
            w=h,
            lag=k * h,
        )
        for k in HORIZON_LAGS
    ]
    return out
