"""Microstructure: spreads, illiquidity, volume, VWAP distance, order-flow proxies, price impact, bar anatomy.

Volume is the tick count of the bar. Spreads are in basis points of the mid price.
"""

from __future__ import annotations

import math

import polars as pl

from spxcast.features.catalog import FeatureContext, FeatureSpec
from spxcast.features.terms import ACROSS_GAPS, KNOWN_AT_CLOSE, Term, bars, log_return, market_spec

GROUP = "microstructure"
CS_WINDOW = 20
ROLL_WINDOW = 60
SPREAD_Z_WINDOW = 60
AMIHUD_WINDOWS = (30, 120)
VOLUME_Z_WINDOWS = (60, 360)
VOLUME_RATIOS = ((1, 60), (5, 60), (60, 1380))
VWAP_WINDOWS = (30, 120)
OFI_WINDOWS = (15, 60)
IMPACT_WINDOW = 60
NOTE = f"{KNOWN_AT_CLOSE} {ACROSS_GAPS}"


def corwin_schultz(window: int) -> Term:
    """Corwin-Schultz (2012) high-low spread estimate, fraction of price, mean of two-bar estimates.

    beta = ln(H_t/L_t)^2 + ln(H_(t-1)/L_(t-1))^2, gamma = ln(max(H_t, H_(t-1)) / min(L_t, L_(t-1)))^2,
    alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2)),
    S = 2 (e^alpha - 1) / (1 + e^alpha), negative estimates set to 0 (as the authors do).
    """
    b = bars()
    hl = (b["high"] / b["low"]).log()
    beta = hl**2 + hl.shift(1) ** 2
    gamma = (b["high"].maximum(b["high"].shift(1)) / b["low"].minimum(b["low"].shift(1))).log() ** 2
    denominator = 3 - 2 * math.sqrt(2)
    alpha = ((2 * beta).sqrt() - beta.sqrt()) / denominator - (gamma / denominator).sqrt()
    spread = 2 * (alpha.exp() - 1) / (1 + alpha.exp())
    return spread.map(lambda e: e.clip(lower_bound=0.0)).rolling_mean(window)


def roll(window: int) -> Term:
    """Roll (1984) spread: 2 sqrt(-cov(r_t, r_(t-1))) over ``window`` bars, 0 when the covariance is >= 0."""
    r = log_return(1)
    cov = r.rolling_cov(r.shift(1), window)
    return 2 * (-cov).sqrt()


def quoted_or_estimated_spread() -> Term:
    """(ask - bid) / mid when both quotes exist on the bar, else the Corwin-Schultz estimate."""
    b = bars()
    quoted = (b["ask_close"] - b["bid_close"]) / b["close"]
    return Term.combine(lambda q, cs: pl.coalesce(q, cs), quoted, corwin_schultz(CS_WINDOW))


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """Microstructure features (windows in bars)."""
    b = bars()
    close, high, low, volume = b["close"], b["high"], b["low"], b["volume"]
    r = log_return(1)
    spread = 1e4 * quoted_or_estimated_spread()
    out = [
        market_spec(
            GROUP,
            spread,
            "basis points of mid",
            f"1e4 * (ask_close - bid_close) / close when the bar has both quotes; otherwise the "
            f"Corwin-Schultz estimate spread_cs_bps_w{CS_WINDOW} (documented fallback for sources without "
            f"quotes). {NOTE}",
            "spread_bps",
        ),
        market_spec(
            GROUP,
            1e4 * corwin_schultz(CS_WINDOW),
            "basis points of mid",
            f"Corwin-Schultz high-low spread estimate: 2(e^a - 1)/(1 + e^a) from two-bar high/low ranges, "
            f"negatives set to 0, mean over {CS_WINDOW} bars. A two-bar range across a gap overstates it. "
            f"{NOTE}",
            "spread_cs_bps",
            w=CS_WINDOW,
        ),
        market_spec(
            GROUP,
            1e4 * roll(ROLL_WINDOW),
            "basis points of mid",
            f"Roll spread estimate: 1e4 * 2 sqrt(max(0, -cov(r_t, r_(t-1)))) over {ROLL_WINDOW} bars of "
            f"one-bar log returns (population covariance). {NOTE}",
            "spread_roll_bps",
            w=ROLL_WINDOW,
        ),
        market_spec(
            GROUP,
            spread.zscore(SPREAD_Z_WINDOW),
            "z-score",
            f"(spread_bps - mean_{SPREAD_Z_WINDOW}) / std_{SPREAD_Z_WINDOW} of spread_bps; 0 on a "
            f"constant window. {NOTE}",
            "spread_z",
            w=SPREAD_Z_WINDOW,
        ),
    ]
    out += [
        market_spec(
            GROUP,
            (1e6 * r.abs()).safe_div(volume).rolling_mean(w),
            "1e-6 per tick",
            f"Amihud illiquidity: mean_{w}(|ln(C_t/C_(t-1))| / volume) * 1e6, volume in ticks "
            f"(0 for a zero-volume bar). {NOTE}",
            "amihud",
            w=w,
        )
        for w in AMIHUD_WINDOWS
    ]
    log_volume = (volume + 1).log()
    out += [
        market_spec(
            GROUP,
            log_volume.zscore(w),
            "z-score",
            f"Volume z-score: (ln(1+volume) - mean_{w}) / std_{w} of ln(1+volume); 0 on a constant window. "
            f"{NOTE}",
            "volume_z",
            w=w,
        )
        for w in VOLUME_Z_WINDOWS
    ]
    out += [
        market_spec(
            GROUP,
            volume.rolling_mean(short).safe_div(volume.rolling_mean(long), fill=1.0),
            "ratio",
            f"Volume ratio: mean volume of the last {short} bar(s) / mean over {long} bars; 1 when the "
            f"long mean is zero. {NOTE}",
            "volume_ratio",
            s=short,
            l=long,
        )
        for short, long in VOLUME_RATIOS
    ]
    typical = (high + low + close) / 3
    out += [
        market_spec(
            GROUP,
            close.pct_above((typical * volume).rolling_sum(w).safe_div(volume.rolling_sum(w))),
            "percent",
            f"100 * (close / VWAP_{w} - 1), rolling VWAP = sum(TP * volume) / sum(volume) over {w} bars, "
            f"TP = (H+L+C)/3; null when the window has no volume. {NOTE}",
            "vwap_dist",
            w=w,
        )
        for w in VWAP_WINDOWS
    ]
    clv = ((close - low) - (high - close)).safe_div(high - low)
    out.append(
        market_spec(
            GROUP,
            clv,
            "ratio -1..1",
            f"Close location value: ((C - L) - (H - C)) / (H - L); 0 on a flat bar. {KNOWN_AT_CLOSE}",
            "clv",
        )
    )
    out += [
        market_spec(
            GROUP,
            (clv * volume).rolling_sum(w).safe_div(volume.rolling_sum(w)),
            "ratio -1..1",
            f"Order-flow imbalance proxy: volume-weighted mean CLV over {w} bars, sum(CLV * volume) / "
            f"sum(volume); 0 without volume. {NOTE}",
            "ofi_proxy",
            w=w,
        )
        for w in OFI_WINDOWS
    ]
    signed_volume = r.sign() * volume.sqrt()
    out.append(
        market_spec(
            GROUP,
            (1e4 * r.rolling_cov(signed_volume, IMPACT_WINDOW)).safe_div(
                signed_volume.rolling_cov(signed_volume, IMPACT_WINDOW)
            ),
            "basis points per sqrt(tick)",
            f"Price impact (Kyle-lambda style): cov(r, s) / var(s) over {IMPACT_WINDOW} bars, "
            f"r = one-bar log return (bps), s = sign(r) * sqrt(volume); 0 when s is constant. {NOTE}",
            "price_impact",
            w=IMPACT_WINDOW,
        )
    )
    bar_range = high - low
    out += [
        market_spec(
            GROUP,
            (close - b["open"]).safe_div(bar_range),
            "ratio -1..1",
            f"Candle body: (C - O) / (H - L); 0 on a flat bar. {KNOWN_AT_CLOSE}",
            "body_ratio",
        ),
        market_spec(
            GROUP,
            (high - b["open"].maximum(close)).safe_div(bar_range),
            "ratio 0..1",
            f"Upper wick: (H - max(O, C)) / (H - L); 0 on a flat bar. {KNOWN_AT_CLOSE}",
            "upper_wick",
        ),
        market_spec(
            GROUP,
            (b["open"].minimum(close) - low).safe_div(bar_range),
            "ratio 0..1",
            f"Lower wick: (min(O, C) - L) / (H - L); 0 on a flat bar. {KNOWN_AT_CLOSE}",
            "lower_wick",
        ),
    ]
    return out
