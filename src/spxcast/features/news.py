"""Point-in-time news signals per bar, as of the bar's close.

A bar with start ``ts`` closes at ``close = ts + bar length``; an article counts for it only when its
``received_at <= close``. Windows are trailing, in minutes: ``(close − w, close]``.

Implementation (exact, no time buckets): articles are aggregated per distinct ``received_at`` and sorted;
cumulative sums of count, score and confidence are taken; a backward as-of join at ``close`` and at
``close − w`` gives the window sums as differences. Exponentially decayed sentiment uses the recursion
``D_k = s_k + D_{k−1}·exp(−(r_k − r_{k−1})/τ)`` at each article time and ``D_k·exp(−(close − r_k)/τ)`` at
the close, which is exact and numerically stable.

Defaults for bars without articles in a window: count 0, average sentiment 0, quality 0, strength 0
(0 means "no evidence"; the count tells it apart from a truly neutral average). Minutes since the latest
article are capped at :data:`MAX_MINUTES_SINCE` (also the value before any article). All values Float32.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import polars as pl

from spxcast.features.catalog import NEWS_GROUP, FeatureContext, FeatureSpec
from spxcast.lake.tables import UTC_TS, epoch_us
from spxcast.timeutil import bar_length

WINDOWS_MINUTES = (15, 60, 240)
DECAY_TAUS_MINUTES = (15, 30, 60)
AVAILABLE_WINDOW_MINUTES = 60
MAX_MINUTES_SINCE = 1440.0
KEY = ["instrument", "granularity", "ts"]
# Weight the decayed sums may leave on articles older than their declared span (exp(-span / tau)).
DECAY_TAIL = 1e-12

_AS_OF = "received_at <= the bar's close (ts + bar length)"


def window_name(stat: str, minutes: int) -> str:
    """Column name of a windowed statistic: ``news_sent_avg_60m``."""
    return f"news_{stat}_{minutes}m"


def decay_name(tau: int) -> str:
    """Column name of exponentially decayed sentiment with e-folding time ``tau`` minutes."""
    return f"news_sent_decay_tau{tau}m"


MINUTES_SINCE = "news_minutes_since_last"
AVAILABLE = "news_available"


def decay_span_minutes(tau: float, tail: float = DECAY_TAIL) -> float:
    """Minutes of articles after which ``exp(-age / tau)`` is below ``tail``: the decayed sum's span."""
    return float(math.ceil(-tau * math.log(tail)))


def specs(context: FeatureContext) -> list[FeatureSpec]:
    """The news features of the catalog (group "news", computed by :func:`news_signals`).

    Each declares, as ``span_minutes``, the articles it reads: received in ``(close - span, close]``;
    the decayed sums leave a weight below :data:`DECAY_TAIL` per article on older ones.
    """
    out: list[FeatureSpec] = []
    for w in WINDOWS_MINUTES:
        window = f"articles with received_at in (close - {w} min, close], i.e. {_AS_OF}"
        out += [
            FeatureSpec(
                window_name("sent_avg", w),
                NEWS_GROUP,
                f"Mean sentiment score (p_pos - p_neg) of {window}; 0 when there are none.",
                "score [-1, 1]",
                1,
                span_minutes=w,
            ),
            FeatureSpec(
                window_name("count", w), NEWS_GROUP, f"Number of {window}.", "articles", 1, span_minutes=w
            ),
            FeatureSpec(
                window_name("quality", w),
                NEWS_GROUP,
                f"Mean scorer confidence (max class probability) of {window}; 0 when there are none.",
                "probability",
                1,
                span_minutes=w,
            ),
            FeatureSpec(
                window_name("strength", w),
                NEWS_GROUP,
                f"Signal strength |news_sent_avg_{w}m| x news_quality_{w}m over {window}.",
                "score [0, 1]",
                1,
                span_minutes=w,
            ),
        ]
    for tau in DECAY_TAUS_MINUTES:
        out.append(
            FeatureSpec(
                decay_name(tau),
                NEWS_GROUP,
                f"Sum of article scores weighted by exp(-(close - received_at) / {tau} min) over every "
                f"article with {_AS_OF}; e-folding time {tau} min.",
                "score",
                1,
                span_minutes=decay_span_minutes(tau),
            )
        )
    out += [
        FeatureSpec(
            MINUTES_SINCE,
            NEWS_GROUP,
            f"Minutes from the latest article with {_AS_OF} to the close; capped at "
            f"{MAX_MINUTES_SINCE:.0f} (also when there is none).",
            "minutes",
            1,
            span_minutes=MAX_MINUTES_SINCE,
        ),
        FeatureSpec(
            AVAILABLE,
            NEWS_GROUP,
            f"1 when at least one article was received in (close - {AVAILABLE_WINDOW_MINUTES} min, close], "
            f"i.e. {_AS_OF}; else 0.",
            "flag",
            1,
            span_minutes=AVAILABLE_WINDOW_MINUTES,
        ),
    ]
    return out


def news_signals(bars: pl.DataFrame, scored_articles: pl.DataFrame, context: FeatureContext) -> pl.DataFrame:
    """News features per bar.

    Parameters
    ----------
    bars : at least the bar key (instrument, granularity, ts); ts is the bar start (UTC).
    scored_articles : received_at (UTC), score in [-1, 1], confidence in [0, 1]; one row per article.
    context : the bar size (``granularity``) gives each bar's close.

    Returns
    -------
    The bar key and every news feature of :func:`specs`, Float32, in the order of ``bars``.
    """
    keys = (
        bars.select(KEY) if bars.schema["ts"] == UTC_TS else bars.select(*KEY[:2], pl.col("ts").cast(UTC_TS))
    )
    columns = signals_at(bar_closes_us(epoch_us(keys["ts"]), context), scored_articles)
    return keys.hstack([pl.Series(name, values.astype(np.float32)) for name, values in columns.items()])


def bar_closes_us(starts_us: np.ndarray, context: FeatureContext) -> np.ndarray:
    """The closes of bars starting at ``starts_us`` (microseconds since the epoch): start + bar length."""
    return starts_us + int(bar_length(context.granularity) / timedelta(microseconds=1))


def signals_at(close_us: np.ndarray, scored_articles: pl.DataFrame) -> dict[str, np.ndarray]:
    """Every news feature (float64, in :func:`specs` order) as of each close (microseconds since the
    epoch), from the scored articles (received_at, score, confidence)."""
    events = article_events(
        epoch_us(scored_articles["received_at"]),
        scored_articles["score"].to_numpy(),
        scored_articles["confidence"].to_numpy(),
    )
    return signals_from_events(close_us, events)


def signals_from_events(close_us: np.ndarray, events: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`signals_at` from the articles' :func:`article_events` (built once for many closes)."""
    close = close_us
    at_close = _as_of(events, close)
    columns: dict[str, np.ndarray] = {}
    for w in WINDOWS_MINUTES:
        before = _as_of(events, close - w * _MINUTE_US, ("n", "s", "c"))
        count = at_close["n"] - before["n"]
        total = at_close["s"] - before["s"]
        confidence = at_close["c"] - before["c"]
        safe = np.where(count > 0, count, 1.0)
        average = np.where(count > 0, total / safe, 0.0)
        quality = np.where(count > 0, confidence / safe, 0.0)
        columns[window_name("sent_avg", w)] = average
        columns[window_name("count", w)] = count
        columns[window_name("quality", w)] = quality
        columns[window_name("strength", w)] = np.abs(average) * quality
    since = close / _MINUTE_US - at_close["t"]
    none_yet = np.isnan(since)
    for tau in DECAY_TAUS_MINUTES:
        decayed = at_close[f"d{tau}"] * np.exp(-np.where(none_yet, 0.0, since) / tau)
        columns[decay_name(tau)] = np.where(none_yet, 0.0, decayed)
    columns[MINUTES_SINCE] = np.where(none_yet, MAX_MINUTES_SINCE, np.minimum(since, MAX_MINUTES_SINCE))
    recent = at_close["n"] - _as_of(events, close - AVAILABLE_WINDOW_MINUTES * _MINUTE_US, ("n",))["n"]
    columns[AVAILABLE] = (recent > 0).astype(np.float64)
    return columns


_MINUTE_US = 60_000_000


def article_events(
    received_us: np.ndarray, scores: np.ndarray, confidences: np.ndarray
) -> dict[str, np.ndarray]:
    """The scored articles (received_at in microseconds since the epoch, score, confidence; any order) as
    one entry per distinct received_at, in time order: ``at`` (microseconds since the epoch), ``t``
    (minutes since the epoch), cumulative count/score/confidence ``n``/``s``/``c`` up to and including it,
    and the decayed score sums ``d{tau}`` just after it."""
    order = np.argsort(received_us, kind="stable")
    ordered = received_us[order]
    at, first = np.unique(ordered, return_index=True)
    scores = scores.astype(np.float64)[order]
    confidences = confidences.astype(np.float64)[order]
    if at.size:
        counts = np.diff(np.append(first, ordered.size)).astype(np.float64)
        score_sums = np.add.reduceat(scores, first)
        confidence_sums = np.add.reduceat(confidences, first)
    else:
        counts = score_sums = confidence_sums = np.zeros(0)
    minutes = at / _MINUTE_US
    events = {
        "at": at,
        "t": minutes,
        "n": np.cumsum(counts),
        "s": np.cumsum(score_sums),
        "c": np.cumsum(confidence_sums),
    }
    for tau in DECAY_TAUS_MINUTES:
        events[f"d{tau}"] = _decayed_sums(minutes, score_sums, tau)
    return events


# A block of the decayed sums spans at most this many e-folding times, so that exp(age / tau) stays far
# below the float64 limit (exp(709)).
_BLOCK_TAUS = 600.0


def _decayed_sums(minutes: np.ndarray, scores: np.ndarray, tau: float) -> np.ndarray:
    """``D_k = s_k + D_{k-1} exp(-(t_k - t_{k-1}) / tau)``: decayed score sum just after event k.

    Vectorised per block of events starting at ``a`` (``E_j = exp((t_j - t_a) / tau)``):
    ``D_k = (D_{a-1} exp(-(t_a - t_{a-1}) / tau) + sum_{a<=j<=k} s_j E_j) / E_k``.
    """
    out = np.empty_like(scores)
    start, carried = 0, 0.0
    while start < scores.size:
        first = minutes[start]
        stop = int(np.searchsorted(minutes, first + _BLOCK_TAUS * tau, side="right"))
        age = (minutes[start:stop] - first) / tau
        if start:
            carried = out[start - 1] * math.exp(-(first - minutes[start - 1]) / tau)
        out[start:stop] = np.exp(-age) * (carried + np.cumsum(scores[start:stop] * np.exp(age)))
        start = stop
    return out


def _as_of(
    events: dict[str, np.ndarray], times_us: np.ndarray, names: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """Values ``names`` (default: all) of the latest event with ``at <= `` each time; zeros (and NaN for
    ``t``) before any."""
    index = np.searchsorted(events["at"], times_us, side="right") - 1
    found = index >= 0
    safe = np.where(found, index, 0)
    out: dict[str, np.ndarray] = {}
    for name, values in events.items():
        if name == "at" or (names is not None and name not in names):
            continue
        if values.size == 0:
            out[name] = np.full(times_us.shape, np.nan if name == "t" else 0.0)
            continue
        out[name] = np.where(found, values[safe], np.nan if name == "t" else 0.0)
    return out
