"""Volatility estimators, per bar in percent log-return units unless the name says ``ann``.

Per-bar units make the features comparable across bar sizes without a calendar assumption; the one
annualised feature uses the OANDA CFD trading year (52 weeks x 115 trading hours), never sqrt(252).
"""

from __future__ import annotations

import math

from spxcast.features.catalog import FeatureContext, FeatureSpec
from spxcast.features.terms import ACROSS_GAPS, KNOWN_AT_CLOSE, Term, bars, log_return, market_spec
from spxcast.timeutil import bar_minutes

GROUP = "volatility"
CC_WINDOWS = (15, 30, 60, 120, 240)
RANGE_WINDOWS = (20, 60)
EWMA_SPANS = (30, 120)
ANNUALISED_WINDOW = 1380  # one session of M1 bars; the per-bar windows stop at 240
VOL_OF_VOL = (15, 60)  # std of vol_cc_w15 over 60 bars
REGIME = (60, 1380)  # vol_cc_w60 against its median over the trailing 1380 bars (one session of M1 bars)
TERM_STRUCTURE = (15, 240)
TRADING_MINUTES_PER_WEEK = 115 * 60  # Sunday 22:00 -> Friday 21:00 UTC less four daily one-hour breaks
WEEKS_PER_YEAR = 52
NOTE = f"{KNOWN_AT_CLOSE} {ACROSS_GAPS}"
PER_BAR = "percent per bar (log-return std x 100)"


def bars_per_year(granularity: str) -> float:
    """Bars in a CFD trading year: 52 weeks of 115 trading hours (358,800 for M1), 260 daily, 52 weekly."""
    minutes = bar_minutes(granularity)
    if minutes >= 7 * 1440:
        return WEEKS_PER_YEAR * 7 * 1440 / minutes
    if minutes >= 1440:
        return WEEKS_PER_YEAR * 5 * 1440 / minutes
    return WEEKS_PER_YEAR * TRADING_MINUTES_PER_WEEK / minutes


def _logs() -> dict[str, Term]:
    """Per-bar log ratios: hl = ln(H/L), hc, ho, lc, lo, co = ln(C/O), oc_prev = ln(O / C_prev)."""
    b = bars()
    return {
        "hl": (b["high"] / b["low"]).log(),
        "hc": (b["high"] / b["close"]).log(),
        "ho": (b["high"] / b["open"]).log(),
        "lc": (b["low"] / b["close"]).log(),
        "lo": (b["low"] / b["open"]).log(),
        "co": (b["close"] / b["open"]).log(),
        "overnight": (b["open"] / b["close"].shift(1)).log(),
    }


def parkinson(window: int) -> Term:
    """sqrt(mean(ln(H/L)^2) / (4 ln 2)), per bar, as a fraction."""
    return ((_logs()["hl"] ** 2).rolling_mean(window) / (4 * math.log(2))).sqrt()


def garman_klass(window: int) -> Term:
    """sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)), per bar, as a fraction."""
    x = _logs()
    return (0.5 * x["hl"] ** 2 - (2 * math.log(2) - 1) * x["co"] ** 2).rolling_mean(window).sqrt()


def rogers_satchell_variance(window: int) -> Term:
    """mean(ln(H/C) ln(H/O) + ln(L/C) ln(L/O)), per-bar variance."""
    x = _logs()
    return (x["hc"] * x["ho"] + x["lc"] * x["lo"]).rolling_mean(window)


def yang_zhang(window: int) -> Term:
    """sqrt(var(ln O/C_prev) + k var(ln C/O) + (1 - k) RS), k = 0.34 / (1.34 + (n+1)/(n-1)), per bar."""
    x = _logs()
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    variance = (
        x["overnight"].rolling_var(window)
        + k * x["co"].rolling_var(window)
        + (1 - k) * rogers_satchell_variance(window)
    )
    return variance.sqrt()


def close_to_close(window: int) -> Term:
    """Sample std of one-bar log returns over ``window`` bars, as a fraction per bar."""
    return log_return(1).rolling_std(window)


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """Volatility features; the annualisation factor depends on the bar size."""
    out = [
        market_spec(
            GROUP,
            100 * close_to_close(w),
            PER_BAR,
            f"100 * sample std of the last {w} one-bar log returns. {NOTE}",
            "vol_cc",
            w=w,
        )
        for w in CC_WINDOWS
    ]
    per_year = bars_per_year(context.granularity)
    out.append(
        market_spec(
            GROUP,
            100 * math.sqrt(per_year) * close_to_close(ANNUALISED_WINDOW),
            "percent per year",
            f"vol_cc_w{ANNUALISED_WINDOW} * sqrt({per_year:.0f}): annualised with the bars in a CFD "
            f"trading year (52 weeks x 115 h for {context.granularity}), not sqrt(252). {NOTE}",
            "vol_cc_ann",
            w=ANNUALISED_WINDOW,
        )
    )
    for w in RANGE_WINDOWS:
        out += [
            market_spec(
                GROUP,
                100 * parkinson(w),
                PER_BAR,
                f"Parkinson: 100 * sqrt(mean_{w}(ln(H/L)^2) / (4 ln 2)). {NOTE}",
                "vol_parkinson",
                w=w,
            ),
            market_spec(
                GROUP,
                100 * garman_klass(w),
                PER_BAR,
                f"Garman-Klass: 100 * sqrt(mean_{w}(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)). {NOTE}",
                "vol_gk",
                w=w,
            ),
            market_spec(
                GROUP,
                100 * rogers_satchell_variance(w).sqrt(),
                PER_BAR,
                f"Rogers-Satchell: 100 * sqrt(mean_{w}(ln(H/C) ln(H/O) + ln(L/C) ln(L/O))). {NOTE}",
                "vol_rs",
                w=w,
            ),
            market_spec(
                GROUP,
                100 * yang_zhang(w),
                PER_BAR,
                f"Yang-Zhang: 100 * sqrt(var_{w}(ln O/C_prev) + k var_{w}(ln C/O) + (1-k) RS_{w}), "
                f"k = 0.34/(1.34 + (n+1)/(n-1)), sample variances. The open-vs-previous-close term carries "
                f"weekend and halt gaps explicitly. {NOTE}",
                "vol_yz",
                w=w,
            ),
            market_spec(
                GROUP,
                100 * _logs()["hl"].rolling_mean(w),
                "percent per bar",
                f"Realized range: 100 * mean_{w}(ln(H/L)), the average bar range. {NOTE}",
                "rrange",
                w=w,
            ),
        ]
    out += [
        market_spec(
            GROUP,
            100 * (log_return(1) ** 2).ewm(2.0 / (s + 1)).sqrt(),
            PER_BAR,
            f"EWMA volatility: 100 * sqrt(EWM(r^2)) of one-bar log returns, zero mean, alpha = 2/({s}+1) "
            f"(RiskMetrics-style recursion). {NOTE}",
            "vol_ewma",
            s=s,
        )
        for s in EWMA_SPANS
    ]
    inner, outer = VOL_OF_VOL
    inner_vol = close_to_close(inner)
    out.append(
        market_spec(
            GROUP,
            inner_vol.rolling_std(outer).safe_div(inner_vol.rolling_mean(outer)),
            "ratio",
            f"Volatility of volatility: std_{outer}(vol_cc_w{inner}) / mean_{outer}(vol_cc_w{inner}), "
            f"a coefficient of variation; 0 on a flat window. {NOTE}",
            "vol_of_vol",
            w=outer,
            v=inner,
        )
    )
    vol_w, median_w = REGIME
    vol = close_to_close(vol_w)
    out.append(
        market_spec(
            GROUP,
            vol.safe_div(vol.rolling_median(median_w), fill=1.0),
            "ratio",
            f"Volatility regime: vol_cc_w{vol_w} / its median over the trailing {median_w} bars "
            f"(never a global median); 1 when that median is zero. {NOTE}",
            "vol_regime",
            w=vol_w,
            m=median_w,
        )
    )
    short, long = TERM_STRUCTURE
    out.append(
        market_spec(
            GROUP,
            close_to_close(short).safe_div(close_to_close(long), fill=1.0),
            "ratio",
            f"Volatility term structure: vol_cc_w{short} / vol_cc_w{long}; 1 when the long one is "
            f"zero. {NOTE}",
            "vol_ratio",
            s=short,
            l=long,
        )
    )
    out.append(
        market_spec(
            GROUP,
            100 * _logs()["hl"],
            "percent",
            f"100 * ln(high / low) of this bar. {KNOWN_AT_CLOSE}",
            "range_log",
        )
    )
    return out
