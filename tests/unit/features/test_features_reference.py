"""Reference values: indicators agree with independent naive-loop implementations of the textbook
definitions (Wilder's simple-mean seeds, SMA-seeded EMAs, per-window loops), and with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from features_factory import random_candles
from spxcast.features.build import feature_frame
from spxcast.features.catalog import FeatureContext, market_catalog

CATALOG = market_catalog(FeatureContext())
N = 900
CHECK_FROM = 600  # textbook seeds and our recursions agree to < 1e-9 long before this row


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return random_candles(N, seed=3, halts=2)


@pytest.fixture(scope="module")
def features(bars: pl.DataFrame) -> pl.DataFrame:
    return feature_frame(bars, list(CATALOG), cast=False).collect()


def _arrays(bars: pl.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(bars[c].to_numpy() for c in ("open", "high", "low", "close"))


def _wilder(values: list[float], n: int) -> list[float]:
    """Wilder's smoothing as he defined it: seed = mean of the first n values, then (prev*(n-1) + x)/n."""
    out = [math.nan] * len(values)
    out[n - 1] = sum(values[:n]) / n
    for i in range(n, len(values)):
        out[i] = (out[i - 1] * (n - 1) + values[i]) / n
    return out


def _ema(values: list[float], span: int) -> list[float]:
    """EMA seeded with the simple mean of the first ``span`` values, alpha = 2/(span+1)."""
    alpha = 2 / (span + 1)
    out = [math.nan] * len(values)
    out[span - 1] = sum(values[:span]) / span
    for i in range(span, len(values)):
        out[i] = alpha * values[i] + (1 - alpha) * out[i - 1]
    return out


def _check(features: pl.DataFrame, name: str, expected: list[float], rtol: float = 1e-8) -> None:
    got = features[name].to_numpy()[CHECK_FROM:]
    want = np.asarray(expected, dtype=float)[CHECK_FROM:]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-9, err_msg=name)


def test_rsi_matches_wilder(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    close = bars["close"].to_list()
    for n in (14, 20):
        gains = [max(close[i] - close[i - 1], 0.0) for i in range(1, N)]
        losses = [max(close[i - 1] - close[i], 0.0) for i in range(1, N)]
        avg_gain, avg_loss = _wilder(gains, n), _wilder(losses, n)
        rsi = [math.nan] + [100 - 100 / (1 + g / lo) for g, lo in zip(avg_gain, avg_loss, strict=True)]
        _check(features, f"rsi_w{n}", rsi)


def test_macd_matches_sma_seeded_emas(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    close = bars["close"].to_list()
    fast, slow = _ema(close, 12), _ema(close, 26)
    line = [f - s for f, s in zip(fast, slow, strict=True)]
    signal = [math.nan] * 25 + _ema(line[25:], 9)
    _check(features, "macd_f12_s26", [100 * m / c for m, c in zip(line, close, strict=True)], rtol=1e-6)
    _check(
        features,
        "macd_signal_f12_s26_g9",
        [100 * s / c for s, c in zip(signal, close, strict=True)],
        rtol=1e-6,
    )
    hist = [100 * (m - s) / c for m, s, c in zip(line, signal, close, strict=True)]
    _check(features, "macd_hist_f12_s26_g9", hist, rtol=1e-5)


def test_bollinger_matches_window_loop(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    close = bars["close"].to_list()
    width, pctb = [math.nan] * N, [math.nan] * N
    for i in range(19, N):
        window = close[i - 19 : i + 1]
        mean = sum(window) / 20
        sd = math.sqrt(sum((x - mean) ** 2 for x in window) / 19)
        width[i] = 100 * 4 * sd / mean
        pctb[i] = (close[i] - (mean - 2 * sd)) / (4 * sd)
    _check(features, "bb_width_w20_k2", width, rtol=1e-7)
    _check(features, "bb_pctb_w20_k2", pctb, rtol=1e-7)


def _true_range(bars: pl.DataFrame) -> list[float]:
    _, high, low, close = _arrays(bars)
    return [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])) for i in range(1, N)
    ]


def test_atr_matches_wilder(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    atr = [math.nan, *_wilder(_true_range(bars), 14)]
    close = bars["close"].to_list()
    _check(features, "atr_rel_w14", [100 * a / c for a, c in zip(atr, close, strict=True)])


def test_adx_and_di_match_wilder(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    _, high, low, _ = _arrays(bars)
    plus_dm, minus_dm = [], []
    for i in range(1, N):
        up, down = high[i] - high[i - 1], low[i - 1] - low[i]
        plus_dm.append(up if up > down and up > 0 else 0.0)
        minus_dm.append(down if down > up and down > 0 else 0.0)
    tr, pdm, mdm = _wilder(_true_range(bars), 14), _wilder(plus_dm, 14), _wilder(minus_dm, 14)
    plus_di = [100 * p / t for p, t in zip(pdm, tr, strict=True)]
    minus_di = [100 * m / t for m, t in zip(mdm, tr, strict=True)]
    dx = [100 * abs(p - m) / (p + m) for p, m in zip(plus_di, minus_di, strict=True)]
    adx = [math.nan] * 13 + _wilder(dx[13:], 14)
    _check(features, "plus_di_w14", [math.nan, *plus_di])
    _check(features, "minus_di_w14", [math.nan, *minus_di])
    _check(features, "adx_w14", [math.nan, *adx], rtol=1e-7)


def test_stochastic_and_williams_match_window_loop(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    _, high, low, close = _arrays(bars)
    k, r = [math.nan] * N, [math.nan] * N
    for i in range(27, N):
        hh, ll = max(high[i - 13 : i + 1]), min(low[i - 13 : i + 1])
        k[i] = 100 * (close[i] - ll) / (hh - ll)
        hh, ll = max(high[i - 27 : i + 1]), min(low[i - 27 : i + 1])
        r[i] = -100 * (hh - close[i]) / (hh - ll)
    d = [math.nan] * 15 + [sum(k[i - 2 : i + 1]) / 3 for i in range(15, N)]
    _check(features, "stoch_k_w14", k)
    _check(features, "stoch_d_w14_s3", d)
    _check(features, "williams_r_w28", r)


def test_range_volatility_estimators_match_window_loop(bars: pl.DataFrame, features: pl.DataFrame) -> None:
    open_, high, low, close = _arrays(bars)
    ln = math.log
    for n in (20, 60):
        park, gk, rs, yz = ([math.nan] * N for _ in range(4))
        k = 0.34 / (1.34 + (n + 1) / (n - 1))
        for i in range(n, N):
            idx = range(i - n + 1, i + 1)
            park[i] = 100 * math.sqrt(sum(ln(high[j] / low[j]) ** 2 for j in idx) / (4 * n * ln(2)))
            gk[i] = 100 * math.sqrt(
                sum(
                    0.5 * ln(high[j] / low[j]) ** 2 - (2 * ln(2) - 1) * ln(close[j] / open_[j]) ** 2
                    for j in idx
                )
                / n
            )
            rs_var = (
                sum(
                    ln(high[j] / close[j]) * ln(high[j] / open_[j])
                    + ln(low[j] / close[j]) * ln(low[j] / open_[j])
                    for j in idx
                )
                / n
            )
            rs[i] = 100 * math.sqrt(rs_var)
            overnight = [ln(open_[j] / close[j - 1]) for j in idx]
            intraday = [ln(close[j] / open_[j]) for j in idx]
            yz[i] = 100 * math.sqrt(
                np.var(overnight, ddof=1) + k * np.var(intraday, ddof=1) + (1 - k) * rs_var
            )
        _check(features, f"vol_parkinson_w{n}", park, rtol=1e-7)
        _check(features, f"vol_gk_w{n}", gk, rtol=1e-7)
        _check(features, f"vol_rs_w{n}", rs, rtol=1e-7)
        _check(features, f"vol_yz_w{n}", yz, rtol=1e-7)


def test_hand_computed_values_on_a_tiny_series() -> None:
    """Values worked out by hand on a 30-bar staircase: +1 every bar, high = close + 1, low = close - 1."""
    n = 30
    close = np.arange(100.0, 100.0 + n)
    frame = random_candles(n, seed=0, halts=0).with_columns(
        pl.Series("close", close),
        pl.Series("open", close - 1),
        pl.Series("high", close + 1),
        pl.Series("low", close - 1),
    )
    specs = [
        CATALOG.get(name)
        for name in (
            "stoch_k_w14",
            "williams_r_w28",
            "bb_pctb_w20_k2",
            "sma_dist_w10",
            "vol_parkinson_w20",
            "clv",
            "body_ratio",
        )
    ]
    last = feature_frame(frame, specs, cast=False).collect().row(-1, named=True)
    # The last 14 closes are 116..129: lowest low 115, highest high 130, close 129, so %K = 100 * 14/15.
    assert last["stoch_k_w14"] == pytest.approx(100 * 14 / 15)
    # The last 28 closes are 102..129: lowest low 101, highest high 130, so %R = -100 * 1/29.
    assert last["williams_r_w28"] == pytest.approx(-100 * 1 / 29)
    # SMA10 of 120..129 is 124.5.
    assert last["sma_dist_w10"] == pytest.approx(100 * (129 / 124.5 - 1))
    # Closes 110..129: mean 119.5, sample std sqrt(35); %B = (129 - 119.5 + 2 sqrt 35) / (4 sqrt 35).
    sd = math.sqrt(35)
    assert last["bb_pctb_w20_k2"] == pytest.approx((129 - 119.5 + 2 * sd) / (4 * sd))
    # Parkinson over the last 20 bars, each with ln(H/L) = ln((c+1)/(c-1)).
    ranges = [math.log((c + 1) / (c - 1)) ** 2 for c in close[-20:]]
    assert last["vol_parkinson_w20"] == pytest.approx(100 * math.sqrt(sum(ranges) / (20 * 4 * math.log(2))))
    assert last["clv"] == pytest.approx(((129 - 128) - (130 - 129)) / 2)
    assert last["body_ratio"] == pytest.approx(1 / 2)
