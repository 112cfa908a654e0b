"""Technical indicators, scale-free: oscillators in their native 0-100 (or -100-0) ranges, and distances
and widths relative to the close in percent.

Wilder smoothing is the recursive mean with ``alpha = 1/n`` (:meth:`Term.wilder`), seeded with the first
value instead of Wilder's simple-mean seed; after the declared lookback the two agree to < 1e-8.
"""

from __future__ import annotations

import operator
from functools import reduce

from spxcast.features.catalog import FeatureContext, FeatureSpec
from spxcast.features.terms import ACROSS_GAPS, KNOWN_AT_CLOSE, Term, bars, market_spec

GROUP = "technical"
RSI_PERIODS = (14, 20)
SMA_WINDOWS = (10, 20, 50, 100, 200)
EMA_SPANS = (12, 26, 50, 200)
MACD = (12, 26, 9)
BOLLINGER = (20, 2)
ATR_PERIOD = 14
DMI_PERIOD = 14
STOCH = (14, 3)
WILLIAMS_PERIOD = 28  # at 14 bars %R would be exactly %K(14) - 100
CCI_PERIOD = 20
ROC_PERIODS = (12,)
MOMENTUM_PERIODS = (10, 30)
NOTE = f"{KNOWN_AT_CLOSE} {ACROSS_GAPS}"


def true_range() -> Term:
    """``max(high - low, |high - close_(t-1)|, |low - close_(t-1)|)`` in price units."""
    b = bars()
    prev_close = b["close"].shift(1)
    return (b["high"] - b["low"]).maximum((b["high"] - prev_close).abs(), (b["low"] - prev_close).abs())


def rsi(period: int) -> Term:
    """Wilder's RSI: ``100 - 100 / (1 + wilder(gain) / wilder(loss))``; 50 when the window is flat."""
    change = bars()["close"].diff(1)
    gain = change.map(lambda e: e.clip(lower_bound=0.0)).wilder(period)
    loss = (-change).map(lambda e: e.clip(lower_bound=0.0)).wilder(period)
    total = gain + loss
    return (100 * gain).safe_div(total, fill=50.0)


def directional(period: int) -> tuple[Term, Term, Term]:
    """Wilder's +DI, -DI and ADX (all 0-100)."""
    b = bars()
    up = b["high"].diff(1)
    down = -b["low"].diff(1)
    plus_dm = Term.combine(lambda u, d: ((u > d) & (u > 0)).cast(float) * u, up, down)
    minus_dm = Term.combine(lambda u, d: ((d > u) & (d > 0)).cast(float) * d, up, down)
    atr = true_range().wilder(period)
    plus_di = (100 * plus_dm.wilder(period)).safe_div(atr)
    minus_di = (100 * minus_dm.wilder(period)).safe_div(atr)
    dx = (100 * (plus_di - minus_di).abs()).safe_div(plus_di + minus_di)
    return plus_di, minus_di, dx.wilder(period)


def macd(fast: int, slow: int, signal: int) -> tuple[Term, Term, Term]:
    """MACD line, signal and histogram, each divided by the close (percent)."""
    close = bars()["close"]
    line = close.ema(fast) - close.ema(slow)
    signal_line = line.ema(signal)
    return 100 * line / close, 100 * signal_line / close, 100 * (line - signal_line) / close


def _trend() -> list[FeatureSpec]:
    """MACD, distances from simple and exponential means, +DI / -DI / ADX."""
    close = bars()["close"]
    out: list[FeatureSpec] = []
    fast, slow, sig = MACD
    line, signal_line, hist = macd(fast, slow, sig)
    macd_text = f"EMA_{fast}(close) - EMA_{slow}(close) (EMA alpha 2/(n+1))"
    out += [
        market_spec(
            GROUP, line, "percent of close", f"100 * ({macd_text}) / close. {NOTE}", "macd", f=fast, s=slow
        ),
        market_spec(
            GROUP,
            signal_line,
            "percent of close",
            f"100 * EMA_{sig}({macd_text}) / close: the MACD signal line. {NOTE}",
            "macd_signal",
            f=fast,
            s=slow,
            g=sig,
        ),
        market_spec(
            GROUP,
            hist,
            "percent of close",
            f"100 * (MACD - signal) / close: the MACD histogram. {NOTE}",
            "macd_hist",
            f=fast,
            s=slow,
            g=sig,
        ),
    ]
    out += [
        market_spec(
            GROUP,
            close.pct_above(close.rolling_mean(w)),
            "percent",
            f"100 * (close / SMA_{w}(close) - 1): distance of the close from its {w}-bar simple mean. {NOTE}",
            "sma_dist",
            w=w,
        )
        for w in SMA_WINDOWS
    ]
    out += [
        market_spec(
            GROUP,
            close.pct_above(close.ema(s)),
            "percent",
            f"100 * (close / EMA_{s}(close) - 1), EMA alpha 2/({s}+1). {NOTE}",
            "ema_dist",
            s=s,
        )
        for s in EMA_SPANS
    ]
    plus_di, minus_di, adx = directional(DMI_PERIOD)
    dmi = (
        f"+DM = up move H-H_prev when it exceeds the down move L_prev-L and is positive (else 0), -DM "
        f"alike; DI = 100 * W(DM) / W(true range), W = Wilder mean alpha 1/{DMI_PERIOD}"
    )
    out += [
        market_spec(
            GROUP, plus_di, "index 0-100", f"+DI({DMI_PERIOD}): {dmi}. {NOTE}", "plus_di", w=DMI_PERIOD
        ),
        market_spec(
            GROUP, minus_di, "index 0-100", f"-DI({DMI_PERIOD}): {dmi}. {NOTE}", "minus_di", w=DMI_PERIOD
        ),
        market_spec(
            GROUP,
            adx,
            "index 0-100",
            f"ADX({DMI_PERIOD}): Wilder mean of DX = 100 * |+DI - -DI| / (+DI + -DI) ({dmi}). {NOTE}",
            "adx",
            w=DMI_PERIOD,
        ),
    ]
    return out


def _bands() -> list[FeatureSpec]:
    """Bollinger width and %B, ATR relative to close, momentum in ATR units."""
    close = bars()["close"]
    out: list[FeatureSpec] = []
    n, k = BOLLINGER
    mid, sd = close.rolling_mean(n), close.rolling_std(n)
    out += [
        market_spec(
            GROUP,
            100 * (2 * k * sd) / mid,
            "percent of the middle band",
            f"Bollinger width: 100 * (upper - lower) / middle = 100 * {2 * k} * std_{n}(close) / "
            f"SMA_{n}(close), sample std. {NOTE}",
            "bb_width",
            w=n,
            k=k,
        ),
        market_spec(
            GROUP,
            (close - (mid - k * sd)).safe_div(2 * k * sd, fill=0.5),
            "fraction (0-1 inside bands)",
            f"Bollinger %B: (close - lower) / (upper - lower), bands SMA_{n} +/- {k} std_{n}; 0.5 on a flat "
            f"window. {NOTE}",
            "bb_pctb",
            w=n,
            k=k,
        ),
    ]
    atr = true_range().wilder(ATR_PERIOD)
    out.append(
        market_spec(
            GROUP,
            100 * atr / close,
            "percent of close",
            f"100 * ATR_{ATR_PERIOD} / close; ATR = Wilder mean (alpha 1/{ATR_PERIOD}) of the true "
            f"range max(H-L, |H-C_prev|, |L-C_prev|). {NOTE}",
            "atr_rel",
            w=ATR_PERIOD,
        )
    )
    out += [
        market_spec(
            GROUP,
            close.diff(p).safe_div(atr),
            "ATR multiples",
            f"Momentum in volatility units: (close - close_(t-{p})) / ATR_{ATR_PERIOD}. {NOTE}",
            "mom_atr",
            w=p,
        )
        for p in MOMENTUM_PERIODS
    ]
    return out


def _oscillators() -> list[FeatureSpec]:
    """RSI, stochastic %K/%D, Williams %R, CCI, rate of change."""
    close, high, low = (bars()[c] for c in ("close", "high", "low"))
    out = [
        market_spec(
            GROUP,
            rsi(n),
            "index 0-100",
            f"Wilder RSI({n}): 100 * W(gain) / (W(gain) + W(loss)) over close-to-close changes, W = "
            f"recursive mean alpha 1/{n}; 50 on a flat window. {NOTE}",
            "rsi",
            w=n,
        )
        for n in RSI_PERIODS
    ]
    period, smooth = STOCH
    highest, lowest = high.rolling_max(period), low.rolling_min(period)
    stoch_k = (100 * (close - lowest)).safe_div(highest - lowest, fill=50.0)
    out += [
        market_spec(
            GROUP,
            stoch_k,
            "index 0-100",
            f"Stochastic %K: 100 * (close - min_{period}(low)) / (max_{period}(high) - min_{period}(low)); "
            f"50 on a flat window. {NOTE}",
            "stoch_k",
            w=period,
        ),
        market_spec(
            GROUP,
            stoch_k.rolling_mean(smooth),
            "index 0-100",
            f"Stochastic %D: {smooth}-bar simple mean of %K({period}). {NOTE}",
            "stoch_d",
            w=period,
            s=smooth,
        ),
    ]
    highest, lowest = high.rolling_max(WILLIAMS_PERIOD), low.rolling_min(WILLIAMS_PERIOD)
    out.append(
        market_spec(
            GROUP,
            (-100 * (highest - close)).safe_div(highest - lowest, fill=-50.0),
            "index -100-0",
            f"Williams %R: -100 * (max_{WILLIAMS_PERIOD}(high) - close) / (max - min_{WILLIAMS_PERIOD}"
            f"(low)); -50 on a flat window. Over {WILLIAMS_PERIOD} bars, since over the %K window it would "
            f"equal %K - 100. {NOTE}",
            "williams_r",
            w=WILLIAMS_PERIOD,
        )
    )
    typical = (high + low + close) / 3
    sma_tp = typical.rolling_mean(CCI_PERIOD)
    mean_dev = (
        reduce(operator.add, ((typical.shift(j) - sma_tp).abs() for j in range(CCI_PERIOD))) / CCI_PERIOD
    )
    out.append(
        market_spec(
            GROUP,
            (typical - sma_tp).safe_div(0.015 * mean_dev),
            "index (about -300-300)",
            f"CCI({CCI_PERIOD}): (TP - SMA_{CCI_PERIOD}(TP)) / (0.015 * mean |TP_i - SMA| over the "
            f"window), TP = (H+L+C)/3; 0 on a flat window. {NOTE}",
            "cci",
            w=CCI_PERIOD,
        )
    )
    out += [
        market_spec(
            GROUP,
            close.pct_above(close.shift(p)),
            "percent",
            f"Rate of change: 100 * (close / close_(t-{p}) - 1), a simple (not log) return. {NOTE}",
            "roc",
            w=p,
        )
        for p in ROC_PERIODS
    ]
    return out


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """Technical indicators (independent of bar size: windows in bars)."""
    return [*_trend(), *_bands(), *_oscillators()]
