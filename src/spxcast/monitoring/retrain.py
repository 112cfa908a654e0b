"""Closing the loop: when an alert asks for a new model, and when a shadow challenger may replace the
champion (pure decision functions; the pipeline and serving calls live in :mod:`spxcast.monitoring.service`).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from spxcast.errors import ConfigError
from spxcast.monitoring.alerts import Finding, NewAlert
from spxcast.monitoring.performance import Paired

# Checks whose alerts say the model no longer fits the data (a single drifting feature does not).
RETRAIN_CHECKS = ("decay", "drift_share", "prediction_drift")

Action = Literal["none", "suggest", "train"]


def retrain_action(
    policy: str,
    opened: Sequence[NewAlert],
    persisting: Sequence[Finding] = (),
    last: LastRetrain | None = None,
    now: datetime | None = None,
    retry_minutes: float = 0.0,
) -> tuple[Action, list[str]]:
    """What the alerts ask for under ``policy`` (off, suggest, automatic), and why.

    Alerts of the checks in :data:`RETRAIN_CHECKS` count. ``suggest`` records and notifies the suggestion
    for alerts opened by this run. ``automatic`` runs training for them too, at most once per
    ``retry_minutes`` since the ``last`` automatic retrain (a flapping alert does not retrain every hour, and
    a challenger in shadow gets that long to gather live evidence); and while the condition persists
    (``persisting``: findings refreshing open alerts) and the last retrain brought no challenger to serving's
    shadow slot (a new regime may need more rows before a model can learn it), it trains again once
    ``retry_minutes`` have passed.
    """
    reasons = [a.finding.key for a in opened if a.finding.check in RETRAIN_CHECKS]
    if policy == "off":
        return "none", reasons
    if policy == "suggest":
        return ("suggest" if reasons else "none"), reasons
    due = last is None or (now is not None and now - last.at >= timedelta(minutes=retry_minutes))
    if reasons:
        return ("train", reasons) if due else ("none", [])
    still = [f.key for f in persisting if f.check in RETRAIN_CHECKS]
    if still and last is not None and not last.reached_shadow and due:
        return "train", [f"{key} (still open; retry)" for key in still]
    return "none", []


@dataclass(frozen=True)
class LastRetrain:
    """The last automatic retrain: when (the monitoring clock, UTC) and whether its version reached
    serving's idle slot in shadow (deployed, or awaiting a person's deploy)."""

    at: datetime
    reached_shadow: bool


def deploy_commands(version: int, reason: str, *, swap: bool, url: str | None = None) -> list[str]:
    """What a person runs to do a deploy the loop could not make itself (no serving URL or admin key, or
    the server refused): load ``version`` into the idle slot and make it live (``swap``) or score in shadow;
    ``url``: the server's base URL when it is not ``serving.host``/``serving.port``."""
    why = shlex.quote(reason) + (f" --url {shlex.quote(url)}" if url else "")
    if swap:
        return [f"spxcast serve deploy {version} --reason {why}"]
    return [
        f"spxcast serve deploy {version} --no-swap --reason {why}",
        f"spxcast serve shadow on --reason {why}",
    ]


@dataclass(frozen=True)
class PromotionLimits:
    min_rows: int
    p_value: float
    max_p99_latency_ms: float
    max_error_rate: float


@dataclass(frozen=True)
class Promotion:
    promote: bool
    reasons: list[str]
    forced: bool = False


def promotion_decision(
    paired: Paired,
    *,
    challenger_p99_latency_ms: float,
    challenger_error_rate: float,
    limits: PromotionLimits,
    force: bool = False,
    reason: str | None = None,
) -> Promotion:
    """Whether the shadow challenger replaces the champion.

    It must have scored at least ``min_rows`` realised live rows that the champion also scored, have a lower
    squared error with the paired test's one-sided p-value below ``p_value``, and stay within the latency
    and error limits. A person may override with ``force`` and a non-empty ``reason`` (recorded).
    """
    failures = []
    if paired.rows < limits.min_rows:
        failures.append(f"only {paired.rows} paired live rows (need {limits.min_rows})")
    if not (math.isfinite(paired.p_value) and paired.p_value < limits.p_value):
        failures.append(
            f"challenger not significantly better (p = {paired.p_value:.3g}, need < {limits.p_value}; "
            f"RMSE {paired.challenger_rmse:.4g} vs champion {paired.champion_rmse:.4g})"
        )
    if not challenger_p99_latency_ms <= limits.max_p99_latency_ms:
        failures.append(
            f"p99 latency {challenger_p99_latency_ms:.0f} ms over {limits.max_p99_latency_ms:.0f} ms"
        )
    if not challenger_error_rate <= limits.max_error_rate:
        failures.append(f"error rate {challenger_error_rate:.2%} over {limits.max_error_rate:.2%}")
    if force:
        if not reason or not reason.strip():
            raise ConfigError("a forced promotion needs a reason: pass --reason TEXT")
        return Promotion(True, [f"forced: {reason.strip()}", *failures], forced=True)
    return Promotion(not failures, failures or ["challenger beats champion on the same live rows"])
