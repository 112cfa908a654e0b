"""The embedded synthetic SPX500 market: seeded, realistic candles, news events and the planted oracle.

Model
-----
Time runs on the OANDA CFD calendar (:mod:`spxcast.sources.market.calendar`): five 23-hour sessions a
week, 1380 one-minute bars each. Everything is generated at M1 and aggregated to coarser bars.

*Daily level* (one value per session *n*, cheap, generated from the calendar anchor on):

- log-volatility ``x_n`` is an AR(1) (phi = 0.98, stationary sd 0.30); the session volatility is
  ``sigma_n = annual_vol / sqrt(252) * exp(x_n - 0.30**2)`` so that ``E[sigma_n**2]`` matches the target;
- the opening gap ``g_n ~ N(0, 0.04 sigma_n**2)`` (three times the variance after a weekend);
- the random part of the session's move ``R_n ~ N(0, 0.96 sigma_n**2)``.

*Minute level* (session by session): a stochastic log-volatility AR(1) ``h`` (phi = 0.995 per minute,
stationary sd 0.45, run with ``scipy.signal.lfilter``) times an intraday U-shaped profile ``u`` (quiet
Asian hours, busier European hours, a burst at the US cash open 14:30 UTC that decays, and a rise into the
21:00 close) sets the minute variance ``v_i``. Shocks are Student-t (4 degrees of freedom, unit variance)
plus rare random jumps. The minute returns are then *bridged* to the daily level: the residual
``R_n - sum(r)`` is spread over the session in proportion to ``v_i`` (the conditional law of a Gaussian
walk given its end point), so the price at every session open follows from the daily level alone. The
price opens at ``base_price`` in the session of ``market.synthetic.start``. Prices are rounded to cents;
high and low add half-normal wicks to the open/close range; tick volume follows the intraday profile,
the minute volatility and the size of the move; bid and ask closes sit half a spread around the mid,
the spread widening in quiet hours.

*Events* (``bronze.synthetic_events``): Poisson arrivals (``events_per_session`` per session) with an
intraday seasonality (more in US hours, spikes at the 12:30 and 14:00 UTC macro releases), a direction
(+1/-1), a magnitude (Beta(2, 3), in 0..1) and a kind. Events with magnitude > 0.6 move the market at
once: the bar it arrives in (the first bar closing at or after ``received_at``) jumps by
``direction * magnitude * 10`` minute standard deviations. Jumps are part of the market whether or not
the planted signal is on.

*Planted signal* (``planted_signal``): every M1 bar starting at or after an event's ``received_at``, in the
same session, gets an extra log-return ``direction * magnitude * strength * d0 * exp(-(start - received_at)
/ tau)`` with ``d0 = 1.0`` minute standard deviation (``annual_vol / sqrt(252 * 1380)``) and ``tau =
planted_tau_minutes``. The drift stops at the session close. A coarser bar's drift is the sum over its
minutes. With strength 1.0 the oracle explains about 14 % of the variance of 30-minute M1 returns (R2
of the oracle against realised returns over five years), and the drift raises the realised annual
volatility from about 17 % to about 23 %.

*Oracle* (``bronze.synthetic_oracle``): for a bar closing at ``c = ts + bar_length``, the expected
return in percent from ``c`` to ``c + H`` given the events received at or before ``c``:
``100 * expm1(K(c) * sum_{j<n} q**j)`` with ``K(c)`` the drift the known events impose on the bar starting at
``c``, ``q = exp(-1/tau)`` and ``n`` the minutes of ``[c, c + H)`` left in the session. Events after ``c``
have mean zero, so this is the best forecast of the planted component (the Jensen term of the noise,
of order 1e-8, is ignored). It is never a model input.

Determinism
-----------
Random numbers come from generators keyed by ``(seed, stream, block-or-session)``: the daily values and
events in blocks of 256 sessions, the minute values per session. Generating a range regenerates only the
sessions it needs (plus the cheap daily level from the anchor), so any split of a range into chunks gives
exactly the same rows as one pass, and a resumed ingestion equals an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.signal import lfilter

from spxcast.config import SyntheticMarketSettings
from spxcast.errors import ConfigError
from spxcast.lake.tables import UTC_TS
from spxcast.sources.market.calendar import (
    CALENDAR_ANCHOR,
    SESSION_MINUTES,
    SESSIONS_PER_WEEK,
    first_session_ending_after,
    first_session_opening_at_or_after,
    locate,
    minutes_since_anchor,
    session_open_minute,
)
from spxcast.timeutil import bar_length, parse_utc

FloatArray = npt.NDArray[np.float64]

_BLOCK = 256
_STREAM_DAILY, _STREAM_EVENTS, _STREAM_MINUTES = 1, 2, 3

_DAILY_VOL_PHI = 0.98
_DAILY_VOL_SD = 0.30
_GAP_SHARE = 0.04
_WEEKEND_GAP_MULTIPLIER = 3.0
_MINUTE_VOL_PHI = 0.995
_MINUTE_VOL_SD = 0.45
_SHOCK_DF = 4.0
_RANDOM_JUMPS_PER_SESSION = 0.3
_RANDOM_JUMP_SCALE = 4.0
_EVENT_JUMP_THRESHOLD = 0.6
_EVENT_JUMP_SCALE = 10.0
_DRIFT_D0 = 1.0
_TICKS_PER_MINUTE = 80.0
_US_OPEN_OFFSET = (14 * 60 + 30) - (22 * 60 - 1440)  # 14:30 UTC, in minutes since the 22:00 open
_CLOSE_OFFSET = SESSION_MINUTES
_MACRO_OFFSETS = (12 * 60 + 30 + 120, 14 * 60 + 120)  # 12:30 and 14:00 UTC
_KINDS = ("macro", "central_bank", "earnings", "geopolitics", "markets")
_ANCHOR_US = int(CALENDAR_ANCHOR.timestamp() * 1_000_000)
_MINUTE_US = 60_000_000


def _intraday_profile() -> FloatArray:
    """Relative minute variance across a session (mean 1): quiet Asia, busier Europe, U-shaped US hours."""
    offset = np.arange(SESSION_MINUTES, dtype=np.float64)
    utc_hour = ((offset / 60.0) + 22.0) % 24.0
    profile = np.where(utc_hour < 7.0, 0.25, 0.45)
    profile = np.where(offset >= _US_OPEN_OFFSET - 60, 0.6, profile)
    since_open = offset - _US_OPEN_OFFSET
    us = 1.0 + 2.5 * np.exp(-since_open / 20.0) + 1.2 * np.exp(-(_CLOSE_OFFSET - 1 - offset) / 25.0)
    profile = np.where(since_open >= 0, us, profile)
    profile = profile + 0.4 * np.exp(-offset / 20.0)
    return profile / profile.mean()


def _event_seasonality(profile: FloatArray) -> FloatArray:
    """Probability of an event arriving in each minute of a session."""
    weights = profile.copy()
    for offset in _MACRO_OFFSETS:
        weights[offset] += 40.0
    return weights / weights.sum()


_PROFILE = _intraday_profile()
_EVENT_WEIGHTS = _event_seasonality(_PROFILE)


@dataclass(frozen=True)
class SyntheticMarket:
    """One generated range: raw candles, the events received in it and (planted signal on) the oracle."""

    candles: pl.DataFrame
    events: pl.DataFrame
    oracle: pl.DataFrame | None


@dataclass(frozen=True)
class _Events:
    """Events of sessions ``[0, n)``, sorted by (session, arrival)."""

    ordinal: npt.NDArray[np.int64]
    sequence: npt.NDArray[np.int64]
    offset_us: npt.NDArray[np.int64]
    direction: npt.NDArray[np.int64]
    magnitude: FloatArray
    kind: npt.NDArray[np.int64]

    @property
    def offset_minutes(self) -> FloatArray:
        return self.offset_us / _MINUTE_US

    def select(self, mask: npt.NDArray[np.bool_]) -> _Events:
        return _Events(
            self.ordinal[mask],
            self.sequence[mask],
            self.offset_us[mask],
            self.direction[mask],
            self.magnitude[mask],
            self.kind[mask],
        )


class SyntheticCandleSource:
    """The synthetic market as a :class:`~spxcast.sources.market.base.CandleSource`."""

    name = "synthetic"

    def __init__(self, config: SyntheticMarketSettings, seed: int, horizon_minutes: int) -> None:
        if seed < 0:
            raise ConfigError(f"the synthetic market needs a non-negative seed; got {seed}")
        if parse_utc(config.start) < CALENDAR_ANCHOR:
            raise ConfigError(
                f"market.synthetic.start {config.start} is before the calendar anchor "
                f"{CALENDAR_ANCHOR:%Y-%m-%d}; choose a later start"
            )
        self.config = config
        self.seed = seed
        self.horizon_minutes = horizon_minutes
        self._daily_sigma = config.annual_vol / math.sqrt(252.0)
        self._minute_sigma = self._daily_sigma / math.sqrt(SESSION_MINUTES)
        self._q = math.exp(-1.0 / config.planted_tau_minutes)

    def fetch(
        self, instrument: str, granularity: str, start: datetime | None, end: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield the candles of ``[start, end)`` (one frame)."""
        if start is None or end is None:
            raise ConfigError("the synthetic source needs a start and an end")
        yield self.generate(instrument, granularity, start, end).candles

    def generate(self, instrument: str, granularity: str, start: datetime, end: datetime) -> SyntheticMarket:
        """Candles with ``ts`` in ``[start, end)``, events received in it, and the oracle of its bars."""
        length = bar_length(granularity)
        bar_minutes = length.total_seconds() / 60.0
        if bar_minutes < 1 or bar_minutes != int(bar_minutes):
            raise ConfigError(
                f"the synthetic market is generated in whole minutes; granularity {granularity!r} is not"
            )
        if start < CALENDAR_ANCHOR:
            raise ConfigError(
                f"the synthetic market starts at {CALENDAR_ANCHOR:%Y-%m-%d %H:%M} UTC; "
                f"got start {start:%Y-%m-%d}"
            )
        if end <= start:
            raise ConfigError(f"synthetic range end {end} must be after its start {start}")
        start_min, end_min = minutes_since_anchor(start), minutes_since_anchor(end)
        first = first_session_ending_after(start_min)
        stop = max(first, first_session_opening_at_or_after(end_min + bar_minutes) + 1)
        reference = first_session_ending_after(minutes_since_anchor(parse_utc(self.config.start)))
        sessions = max(stop, reference + 1)
        daily = self._daily(sessions)
        events = self._events(sessions)
        minutes = self._minutes(first, stop, reference, daily, events)
        bars = _aggregate(minutes, granularity, int(bar_minutes))
        start_us, end_us = int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
        in_range = (bars["ts_us"] >= start_us) & (bars["ts_us"] < end_us)
        bars = {name: column[in_range] for name, column in bars.items()}
        oracle = None
        if self.config.planted_signal:
            oracle = self._oracle(bars["ts_us"], int(bar_minutes), first, minutes["drift_state"])
            oracle = oracle.with_columns(
                instrument=pl.lit(instrument),
                granularity=pl.lit(granularity),
                horizon_minutes=pl.lit(self.horizon_minutes, dtype=pl.Int32),
            ).select("instrument", "granularity", "ts", "horizon_minutes", "oracle_ret_pct")
        return SyntheticMarket(
            candles=self._candle_frame(bars),
            events=self._event_frame(events, instrument, start_us, end_us),
            oracle=oracle,
        )

    def _daily(self, stop: int) -> dict[str, FloatArray]:
        """Daily level of sessions ``[0, stop)``: volatility, gap and random session move."""
        blocks = -(-stop // _BLOCK)
        draws = np.vstack(
            [
                np.random.default_rng([self.seed, _STREAM_DAILY, b]).standard_normal((_BLOCK, 3))
                for b in range(blocks)
            ]
        )[:stop]
        innovation = draws[:, 0] * _DAILY_VOL_SD * math.sqrt(1 - _DAILY_VOL_PHI**2)
        innovation[0] = draws[0, 0] * _DAILY_VOL_SD
        log_vol = lfilter([1.0], [1.0, -_DAILY_VOL_PHI], innovation)
        sigma = self._daily_sigma * np.exp(log_vol - _DAILY_VOL_SD**2)
        monday = (np.arange(stop) % SESSIONS_PER_WEEK) == 0
        gap_share = _GAP_SHARE * np.where(monday, _WEEKEND_GAP_MULTIPLIER, 1.0)
        return {
            "sigma": sigma,
            "gap": sigma * np.sqrt(gap_share) * draws[:, 2],
            "move": sigma * math.sqrt(1 - _GAP_SHARE) * draws[:, 1],
        }

    def _events(self, stop: int) -> _Events:
        """Events of sessions ``[0, stop)``, drawn in blocks of sessions."""
        parts: list[dict[str, np.ndarray]] = []
        for block in range(-(-stop // _BLOCK)):
            rng = np.random.default_rng([self.seed, _STREAM_EVENTS, block])
            counts = rng.poisson(self.config.events_per_session, _BLOCK)
            n = int(counts.sum())
            minute = rng.choice(SESSION_MINUTES, size=n, p=_EVENT_WEIGHTS)
            fraction = rng.random(n)
            direction = np.where(rng.random(n) < 0.5, -1, 1)
            magnitude = rng.beta(2.0, 3.0, n)
            other_kind = rng.integers(2, len(_KINDS), n)
            macro = np.isin(minute, _MACRO_OFFSETS)
            kind = np.where(macro, np.where(minute == _MACRO_OFFSETS[0], 0, 1), other_kind)
            offset_us = minute.astype(np.int64) * _MINUTE_US + (fraction * _MINUTE_US).astype(np.int64)
            ordinal = np.repeat(block * _BLOCK + np.arange(_BLOCK), counts)
            order = np.lexsort((offset_us, ordinal))
            parts.append(
                {
                    "ordinal": ordinal[order],
                    "offset_us": offset_us[order],
                    "direction": direction[order],
                    "magnitude": magnitude[order],
                    "kind": kind[order],
                }
            )
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        keep = merged["ordinal"] < stop
        merged = {k: v[keep] for k, v in merged.items()}
        ordinal = merged["ordinal"].astype(np.int64)
        starts = np.searchsorted(ordinal, ordinal, side="left")
        sequence = np.arange(ordinal.size) - starts
        return _Events(
            ordinal,
            sequence.astype(np.int64),
            merged["offset_us"],
            merged["direction"].astype(np.int64),
            merged["magnitude"],
            merged["kind"].astype(np.int64),
        )

    def _drift_amplitude(self, events: _Events) -> FloatArray:
        """Per-minute log-return the planted drift adds right at each event (zero when it is off)."""
        if not self.config.planted_signal:
            return np.zeros(events.ordinal.size)
        scale = self.config.planted_strength * _DRIFT_D0 * self._minute_sigma
        return events.direction * events.magnitude * scale

    def _event_jumps(self, events: _Events, sigma: FloatArray) -> FloatArray:
        """Immediate log-return of each event in the bar containing it (zero for small events)."""
        big = events.magnitude > _EVENT_JUMP_THRESHOLD
        minute_sigma = sigma[events.ordinal] / math.sqrt(SESSION_MINUTES)
        return np.where(big, events.direction * events.magnitude * _EVENT_JUMP_SCALE * minute_sigma, 0.0)

    def _session_drift_sums(self, events: _Events, amplitude: FloatArray) -> FloatArray:
        """Total planted log-return each event adds to its session (closed-form geometric sums)."""
        offset = events.offset_minutes
        first_bar = np.ceil(offset)
        bars_left = SESSION_MINUTES - first_bar
        tau = self.config.planted_tau_minutes
        return amplitude * np.exp(-(first_bar - offset) / tau) * (1 - self._q**bars_left) / (1 - self._q)

    def _minutes(
        self, first: int, stop: int, reference: int, daily: dict[str, FloatArray], events: _Events
    ) -> dict[str, np.ndarray]:
        """M1 bars of sessions ``[first, stop)`` plus the planted drift state at every minute boundary.

        The price opens at ``base_price`` in session ``reference`` (the configured synthetic start); every
        other session's open follows from the daily level.
        """
        amplitude = self._drift_amplitude(events)
        jumps = self._event_jumps(events, daily["sigma"])
        drift_sums = self._session_drift_sums(events, amplitude)
        sessions_total = daily["gap"].size
        known = np.bincount(events.ordinal, jumps + drift_sums, minlength=sessions_total)
        close_log = np.cumsum(daily["gap"] + daily["move"] + known)
        open_log_all = close_log - daily["move"] - known
        open_log = (open_log_all - open_log_all[reference] + math.log(self.config.base_price))[first:stop]

        sessions = np.arange(first, stop)
        s = sessions.size
        shocks = np.empty((s, SESSION_MINUTES))
        normals = np.empty((s, 4, SESSION_MINUTES))
        jump_u = np.empty((s, SESSION_MINUTES))
        h0 = np.empty(s)
        for row, ordinal in enumerate(sessions):
            rng = np.random.default_rng([self.seed, _STREAM_MINUTES, int(ordinal)])
            shocks[row] = rng.standard_t(_SHOCK_DF, SESSION_MINUTES)
            normals[row] = rng.standard_normal((4, SESSION_MINUTES))
            jump_u[row] = rng.random(SESSION_MINUTES)
            h0[row] = rng.standard_normal()
        shocks /= math.sqrt(_SHOCK_DF / (_SHOCK_DF - 2))

        h_innovation = normals[:, 0] * _MINUTE_VOL_SD * math.sqrt(1 - _MINUTE_VOL_PHI**2)
        h, _ = lfilter(
            [1.0],
            [1.0, -_MINUTE_VOL_PHI],
            h_innovation,
            axis=1,
            zi=(_MINUTE_VOL_PHI * _MINUTE_VOL_SD * h0)[:, None],
        )
        sigma = daily["sigma"][first:stop]
        variance = (
            (sigma**2 * (1 - _GAP_SHARE) / SESSION_MINUTES)[:, None]
            * _PROFILE
            * np.exp(h - _MINUTE_VOL_SD**2 / 2)
        )
        scale = np.sqrt(variance)
        jump = jump_u < _RANDOM_JUMPS_PER_SESSION / SESSION_MINUTES
        returns = scale * shocks * np.where(jump, _RANDOM_JUMP_SCALE, 1.0)
        residual = daily["move"][first:stop] - returns.sum(axis=1)
        returns += variance / variance.sum(axis=1, keepdims=True) * residual[:, None]

        here = (events.ordinal >= first) & (events.ordinal < stop)
        local, local_amp, local_jumps = events.select(here), amplitude[here], jumps[here]
        rows = local.ordinal - first
        offset = local.offset_minutes
        first_bar = np.ceil(offset).astype(np.int64)
        # The jump lands in the bar whose interval (start, close] holds received_at: known at that close.
        np.add.at(returns, (rows, np.maximum(first_bar - 1, 0)), local_jumps)
        impulses = np.zeros((s, SESSION_MINUTES + 1))
        tau = self.config.planted_tau_minutes
        np.add.at(impulses, (rows, first_bar), local_amp * np.exp(-(first_bar - offset) / tau))
        drift_state = lfilter([1.0], [1.0, -self._q], impulses, axis=1)
        returns += drift_state[:, :SESSION_MINUTES]

        log_close = open_log[:, None] + np.cumsum(returns, axis=1)
        log_open = np.concatenate([open_log[:, None], log_close[:, :-1]], axis=1)
        wick_high = scale * np.abs(normals[:, 1]) * 0.6
        wick_low = scale * np.abs(normals[:, 2]) * 0.6
        close = np.exp(log_close)
        surprise = np.minimum(np.abs(returns) / scale, 10.0)
        volume = (
            _TICKS_PER_MINUTE * _PROFILE**0.8 * np.exp(0.5 * h + 0.3 * normals[:, 3]) * (0.6 + 0.4 * surprise)
        )
        spread = close * self.config.spread_bps / 1e4 * (0.6 + 0.4 / np.sqrt(_PROFILE)) * np.exp(0.25 * h)
        minute_index = session_open_minute(sessions)[:, None] + np.arange(SESSION_MINUTES)
        return {
            "ts_us": (_ANCHOR_US + minute_index * _MINUTE_US).ravel(),
            "open": np.exp(log_open).ravel(),
            "high": np.exp(np.maximum(log_open, log_close) + wick_high).ravel(),
            "low": np.exp(np.minimum(log_open, log_close) - wick_low).ravel(),
            "close": close.ravel(),
            "volume": np.maximum(1, np.rint(volume)).astype(np.int64).ravel(),
            "bid_close": (close - spread / 2).ravel(),
            "ask_close": (close + spread / 2).ravel(),
            "drift_state": drift_state,
        }

    def _oracle(
        self, ts_us: np.ndarray, bar_minutes: int, first: int, drift_state: FloatArray
    ) -> pl.DataFrame:
        """Expected planted return (percent) from each bar's close to ``horizon`` minutes later."""
        close_minute = (ts_us - _ANCHOR_US) // _MINUTE_US + bar_minutes
        ordinal, offset = locate(close_minute)
        in_session = offset < SESSION_MINUTES
        row = np.clip(ordinal - first, 0, drift_state.shape[0] - 1)
        column = np.clip(offset.astype(np.int64), 0, SESSION_MINUTES)
        known = np.where(in_session, drift_state[row, column], 0.0)
        bars_left = np.clip(np.minimum(self.horizon_minutes, SESSION_MINUTES - offset), 0, None)
        expected_log = known * (1 - self._q**bars_left) / (1 - self._q)
        return pl.DataFrame(
            {
                "ts": pl.Series(ts_us, dtype=pl.Int64).cast(UTC_TS),
                "oracle_ret_pct": 100.0 * np.expm1(expected_log),
            }
        )

    def _candle_frame(self, bars: dict[str, np.ndarray]) -> pl.DataFrame:
        prices = {k: np.round(bars[k], 2) for k in ("open", "high", "low", "close", "bid_close", "ask_close")}
        frame = pl.DataFrame(
            {
                "ts": pl.Series(bars["ts_us"], dtype=pl.Int64).cast(UTC_TS),
                **{k: prices[k] for k in ("open", "high", "low", "close")},
                "volume": pl.Series(bars["volume"], dtype=pl.Int64),
                "bid_close": prices["bid_close"],
                "ask_close": prices["ask_close"],
            }
        )
        if not self.config.with_bid_ask:
            frame = frame.with_columns(bid_close=pl.lit(None, pl.Float64), ask_close=pl.lit(None, pl.Float64))
        return frame

    def _event_frame(self, events: _Events, instrument: str, start_us: int, end_us: int) -> pl.DataFrame:
        received_us = _ANCHOR_US + session_open_minute(events.ordinal) * _MINUTE_US + events.offset_us
        keep = (received_us >= start_us) & (received_us < end_us)
        ids = [
            f"syn{self.seed}-{o}-{q}"
            for o, q in zip(events.ordinal[keep], events.sequence[keep], strict=True)
        ]
        return pl.DataFrame(
            {
                "instrument": [instrument] * len(ids),
                "event_id": pl.Series(ids, dtype=pl.Utf8),
                "received_at": pl.Series(received_us[keep], dtype=pl.Int64).cast(UTC_TS),
                "direction": pl.Series(events.direction[keep], dtype=pl.Int8),
                "magnitude": pl.Series(events.magnitude[keep], dtype=pl.Float64),
                "kind": pl.Series(np.array(_KINDS)[events.kind[keep]], dtype=pl.Utf8),
            }
        )


def _aggregate(minutes: dict[str, np.ndarray], granularity: str, bar_minutes: int) -> dict[str, np.ndarray]:
    """M1 bars -> bars of ``granularity`` (sub-day: aligned to UTC midnight; D: session; W: week)."""
    columns = ("ts_us", "open", "high", "low", "close", "volume", "bid_close", "ask_close")
    if bar_minutes == 1:
        return {k: minutes[k] for k in columns}
    minute = (minutes["ts_us"] - _ANCHOR_US) // _MINUTE_US
    if granularity in {"D", "W"}:
        ordinal, _ = locate(minute)
        first = ordinal if granularity == "D" else ordinal - ordinal % SESSIONS_PER_WEEK
        bucket = _ANCHOR_US + session_open_minute(first) * _MINUTE_US
    else:
        step = bar_minutes * _MINUTE_US
        bucket = (minutes["ts_us"] // step) * step
    frame = pl.DataFrame({"bucket": bucket, **{k: minutes[k] for k in columns if k != "ts_us"}})
    grouped = frame.group_by("bucket", maintain_order=True).agg(
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
        pl.col("bid_close").last(),
        pl.col("ask_close").last(),
    )
    out = {k: grouped[k].to_numpy() for k in columns if k != "ts_us"}
    out["ts_us"] = grouped["bucket"].to_numpy()
    return out
