"""Rolling shape statistics of one-bar log returns and of the price path: skew, kurtosis,
autocorrelation, distance from rolling highs and lows, drawdown, share of up bars.
"""

from __future__ import annotations

from spxcast.features.catalog import FeatureContext, FeatureSpec
from spxcast.features.terms import ACROSS_GAPS, KNOWN_AT_CLOSE, bars, log_return, market_spec

GROUP = "shape"
MOMENT_WINDOWS = (60, 240)
AUTOCORR_WINDOWS = (60, 240)
EXTREMA_WINDOWS = (60, 240)  # the session-long view is drawdown_w1380 and range_pos_w1380
RANGE_POSITION_WINDOW = 1380
DRAWDOWN_WINDOWS = (360, 1380)
UP_FRACTION_WINDOW = 60
NOTE = f"{KNOWN_AT_CLOSE} {ACROSS_GAPS}"


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """Shape statistics (windows in bars)."""
    b = bars()
    close = b["close"]
    r = log_return(1)
    out = []
    for w in MOMENT_WINDOWS:
        out += [
            market_spec(
                GROUP,
                r.rolling_skew(w),
                "unitless",
                f"Sample skewness (bias-corrected) of the last {w} one-bar log returns. {NOTE}",
                "skew",
                w=w,
            ),
            market_spec(
                GROUP,
                r.rolling_kurtosis(w),
                "unitless (excess)",
                f"Sample excess kurtosis (bias-corrected) of the last {w} one-bar log returns. {NOTE}",
                "kurt",
                w=w,
            ),
        ]
    for w in AUTOCORR_WINDOWS:
        previous = r.shift(1)
        covariance = r.rolling_cov(previous, w)
        scale = (r.rolling_cov(r, w) * previous.rolling_cov(previous, w)).sqrt()
        out.append(
            market_spec(
                GROUP,
                covariance.safe_div(scale),
                "correlation -1..1",
                f"Lag-1 autocorrelation: corr(r_t, r_(t-1)) over the last {w} pairs of one-bar log "
                f"returns; 0 on a constant window. {NOTE}",
                "autocorr",
                w=w,
                lag=1,
            )
        )
    for w in EXTREMA_WINDOWS:
        out += [
            market_spec(
                GROUP,
                close.pct_above(b["high"].rolling_max(w)),
                "percent (<= 0)",
                f"100 * (close / max_{w}(high) - 1): distance below the {w}-bar high. {NOTE}",
                "dist_high",
                w=w,
            ),
            market_spec(
                GROUP,
                close.pct_above(b["low"].rolling_min(w)),
                "percent (>= 0)",
                f"100 * (close / min_{w}(low) - 1): distance above the {w}-bar low. {NOTE}",
                "dist_low",
                w=w,
            ),
        ]
    highest, lowest = (
        b["high"].rolling_max(RANGE_POSITION_WINDOW),
        b["low"].rolling_min(RANGE_POSITION_WINDOW),
    )
    out.append(
        market_spec(
            GROUP,
            (close - lowest).safe_div(highest - lowest, fill=0.5),
            "fraction 0..1",
            f"Position of the close in the {RANGE_POSITION_WINDOW}-bar range: (close - min(low)) / "
            f"(max(high) - min(low)); 0.5 on a flat window. {NOTE}",
            "range_pos",
            w=RANGE_POSITION_WINDOW,
        )
    )
    out += [
        market_spec(
            GROUP,
            close.pct_above(close.rolling_max(w)),
            "percent (<= 0)",
            f"Drawdown: 100 * (close / max_{w}(close) - 1), from the highest close of the last {w} bars. "
            f"{NOTE}",
            "drawdown",
            w=w,
        )
        for w in DRAWDOWN_WINDOWS
    ]
    out.append(
        market_spec(
            GROUP,
            r.map(lambda e: (e > 0).cast(float)).rolling_mean(UP_FRACTION_WINDOW),
            "fraction",
            f"Share of the last {UP_FRACTION_WINDOW} bars that closed above the previous close. {NOTE}",
            "up_fraction",
            w=UP_FRACTION_WINDOW,
        )
    )
    return out
