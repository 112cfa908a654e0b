"""Cost-aware backtest of a forecast's sign.

Rule: walk the rows in time order and enter at a row when at least H minutes have passed since the
previous entry (so entries never overlap); take position ``sign(prediction)`` (−1, 0 or +1) and hold it for
the horizon; the entry earns ``position · actual`` (percent of price, the label of that row). A position
kept from one entry to the next is not re-traded: trading cost is charged on position changes, half of
``cost_bps`` per unit of change (a round trip = open + close = ``cost_bps``), and the last position is
closed at the end. Turnover is round trips per entry. Sharpe ratios are annualised with the number of
entries per year implied by the sample: ``entries / (span in years)``, span = last entry + H − first entry.
Max drawdown is the largest fall of cumulative (additive, percent) net PnL from its running peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

_YEAR_MINUTES = 365.25 * 24 * 60


@dataclass(frozen=True)
class BacktestResult:
    """Per-entry series and summary statistics (returns in percent)."""

    entry_index: np.ndarray
    position: np.ndarray
    gross: np.ndarray
    net: np.ndarray
    entries_per_year: float

    def summary(self) -> dict[str, Any]:
        traded = self.position != 0
        return {
            "entries": len(self.position),
            "entries_per_year": self.entries_per_year,
            "gross_return_pct": float(self.gross.sum()),
            "net_return_pct": float(self.net.sum()),
            "gross_sharpe": sharpe(self.gross, self.entries_per_year),
            "net_sharpe": sharpe(self.net, self.entries_per_year),
            "max_drawdown_pct": max_drawdown(self.net),
            "turnover": turnover(self.position),
            "hit_rate": float((self.gross[traded] > 0).mean()) if traded.any() else math.nan,
        }


def non_overlapping_entries(ts_minutes: np.ndarray, horizon_minutes: float) -> np.ndarray:
    """Indices of entries: the first row, then each first row at least H minutes after the last entry."""
    entries: list[int] = []
    i, n = 0, len(ts_minutes)
    while i < n:
        entries.append(i)
        i = max(i + 1, int(np.searchsorted(ts_minutes, ts_minutes[i] + horizon_minutes, side="left")))
    return np.asarray(entries, dtype=np.int64)


def position_changes(position: np.ndarray) -> np.ndarray:
    """|change| at each entry (from flat before the first) plus the final close, as one array per entry."""
    changes = np.abs(np.diff(np.r_[0.0, position]))
    if len(changes):
        changes[-1] += abs(position[-1])
    return changes


def turnover(position: np.ndarray) -> float:
    """Round trips per entry: total |position change| (incl. final close) / 2 / entries."""
    if len(position) == 0:
        return math.nan
    return float(position_changes(position).sum() / 2 / len(position))


def sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio: mean / std (ddof=1) · sqrt(periods per year); nan when undefined."""
    if len(returns) < 2 or np.std(returns, ddof=1) == 0:
        return math.nan
    return float(np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(periods_per_year))


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough fall of cumulative additive returns (percent, >= 0); the peak starts at 0."""
    if len(returns) == 0:
        return 0.0
    cumulative = np.cumsum(returns)
    peaks = np.maximum.accumulate(np.r_[0.0, cumulative])[1:]
    return float(np.max(peaks - cumulative))


def backtest(
    ts_minutes: np.ndarray, y: np.ndarray, pred: np.ndarray, horizon_minutes: float, cost_bps: float
) -> BacktestResult:
    """Hold ``sign(pred)`` for the horizon on non-overlapping entries (see module docstring).

    Parameters
    ----------
    ts_minutes : bar starts in minutes (any origin), increasing.
    y : realised forward returns over the horizon, percent.
    pred : forecasts, percent (only the sign is used).
    cost_bps : round-trip cost in basis points of price.
    """
    entries = non_overlapping_entries(ts_minutes, horizon_minutes)
    position = np.sign(pred[entries]).astype(float)
    gross = position * y[entries]
    net = gross - position_changes(position) * cost_bps / 100.0 / 2.0
    if len(entries):
        span_years = (ts_minutes[entries[-1]] - ts_minutes[entries[0]] + horizon_minutes) / _YEAR_MINUTES
        per_year = len(entries) / span_years
    else:
        per_year = math.nan
    return BacktestResult(entries, position, gross, net, per_year)
