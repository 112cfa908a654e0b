"""One monitoring pass over loaded inputs: every check's findings (pure; the clock and inputs are passed in).

:mod:`spxcast.monitoring.service` loads :class:`Inputs` (prediction log, lake, registry) and acts on the
:class:`Outcome` (report, alerts, channels, retrain policy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from spxcast.config import MonitoringSettings
from spxcast.monitoring import drift, freshness, performance
from spxcast.monitoring.alerts import Finding, threshold_for

PREDICTION = "prediction"


@dataclass(frozen=True)
class Inputs:
    """What one monitoring pass reads.

    ``served``: the last served rows (role served), time order: ``bar_ts``, ``predicted_pct`` and the
    feature columns. ``realised``: served rows whose outcome is known (``bar_ts``, ``predicted_pct``,
    ``realised_pct``). ``paired``: :func:`performance.paired_rows` of the log. ``references`` and
    ``thresholds``: the drift calibration of the champion's reference (features and ``prediction``).
    ``reference_rmse``: the champion's test RMSE (percent). Times UTC.
    """

    instrument: str
    calendar: str
    bar: timedelta
    horizon_bars: int
    features: Sequence[str]
    served: pl.DataFrame
    realised: pl.DataFrame
    paired: pl.DataFrame
    references: Mapping[str, drift.Reference]
    thresholds: Sequence[drift.Threshold]
    reference_rmse: float | None
    last_bar_ts: datetime | None
    last_article_at: datetime | None
    accepted: int = 0
    quarantined: int = 0
    news: bool = True
    """Whether this series reads news (false for market-only homes: no article-age finding)."""


@dataclass
class Outcome:
    findings: list[Finding]
    drift: pl.DataFrame
    missing: pl.DataFrame
    daily: pl.DataFrame
    weekly: pl.DataFrame
    decay: performance.Decay | None
    paired: performance.Paired | None
    summary: dict[str, Any] = field(default_factory=dict)


def evaluate(inputs: Inputs, settings: MonitoringSettings, now: datetime) -> Outcome:
    """Run every check on ``inputs`` at ``now``; a finding per (check, subject), breached or not."""
    rules = settings.rules
    lag = max(inputs.horizon_bars - 1, 0)
    findings: list[Finding] = []

    current = inputs.served.rename({"predicted_pct": PREDICTION}) if inputs.served.height else inputs.served
    drift_frame = (
        drift.feature_drift(inputs.references, current, inputs.thresholds)
        if current.height
        else pl.DataFrame(schema={"feature": pl.String, "statistic": pl.Float64, "drifted": pl.Boolean})
    )
    for row in drift_frame.iter_rows(named=True):
        if row["statistic"] is None:
            continue
        check = "prediction_drift" if row["feature"] == PREDICTION else "drift"
        findings.append(
            Finding(
                check,
                row["feature"],
                row["statistic"],
                row["threshold"],
                row["drifted"],
                f"{row['method']} {row['statistic']:.3g} > calibrated {row['threshold']:.3g} over the last "
                f"{row['current_rows']} served bars"
                if row["drifted"]
                else "",
            )
        )
    features_only = drift_frame.filter(pl.col("feature") != PREDICTION)
    share = drift.drift_share(features_only) if features_only.height else 0.0
    share_limit = threshold_for(rules, "drift_share", 0.3)
    findings.append(
        Finding(
            "drift_share",
            "features",
            share,
            share_limit,
            features_only.height > 0 and share > share_limit,
            f"{share:.0%} of features drifted (limit {share_limit:.0%})",
        )
    )

    missing = freshness.missing_share(inputs.served, list(inputs.features))
    missing_limit = threshold_for(rules, "missing", 0.05)
    for row in missing.iter_rows(named=True):
        findings.append(
            Finding(
                "missing",
                row["feature"],
                row["missing_share"],
                missing_limit,
                row["rows"] > 0 and row["missing_share"] > missing_limit,
                f"{row['missing_share']:.1%} of the last {row['rows']} served rows missing",
            )
        )

    age = freshness.bar_age_minutes(inputs.last_bar_ts, inputs.bar, now, inputs.instrument, inputs.calendar)
    age_limit = threshold_for(rules, "bar_age", 10.0)
    findings.append(
        Finding(
            "bar_age", "bars", age, age_limit, age > age_limit, f"newest bar {age:.0f} trading minutes old"
        )
    )
    article_age = (
        freshness.trading_age_minutes(inputs.last_article_at, now, inputs.instrument, inputs.calendar)
        if inputs.news
        else math.nan
    )
    article_limit = threshold_for(rules, "article_age", 720.0)
    if inputs.news:
        findings.append(
            Finding(
                "article_age",
                "news",
                article_age,
                article_limit,
                article_age > article_limit,
                _age_message("article", article_age),
            )
        )
    rate = freshness.quarantine_rate(inputs.accepted, inputs.quarantined)
    rate_limit = threshold_for(rules, "quarantine", 0.01)
    findings.append(
        Finding(
            "quarantine",
            "bars",
            rate,
            rate_limit,
            rate > rate_limit,
            f"{rate:.2%} of the last day's bars quarantined "
            f"({inputs.quarantined} of {inputs.accepted + inputs.quarantined})",
        )
    )

    realised = inputs.realised.sort("bar_ts").tail(settings.performance_window_bars)
    y = realised["realised_pct"].to_numpy().astype(np.float64) if realised.height else np.zeros(0)
    pred = realised["predicted_pct"].to_numpy().astype(np.float64) if realised.height else np.zeros(0)
    decay = None
    if inputs.reference_rmse is not None:
        margin = threshold_for(rules, "decay", 0.2)
        decay = performance.decay_test(
            y,
            pred,
            inputs.reference_rmse,
            margin=margin,
            p_value=settings.decay_pvalue,
            lag=lag,
            min_rows=settings.min_realised_rows,
        )
        findings.append(
            Finding(
                "decay",
                "model",
                decay.ratio if math.isfinite(decay.ratio) else 0.0,
                1.0 + margin,
                decay.decayed,
                f"realised RMSE {decay.realised_rmse:.4g} is {decay.ratio:.2f}x the champion's test RMSE "
                f"{decay.reference_rmse:.4g} over {decay.rows} rows (DM p = {decay.p_value:.2g})",
                {"p_value": decay.p_value, "statistic": decay.statistic, "rows": decay.rows},
            )
        )
    paired = None
    if inputs.paired.height >= 2:
        tail = inputs.paired.tail(settings.performance_window_bars)
        paired = performance.paired_test(
            tail["realised_pct"].to_numpy().astype(np.float64),
            tail["champion_pct"].to_numpy().astype(np.float64),
            tail["challenger_pct"].to_numpy().astype(np.float64),
            lag,
        )
        better = paired.rows >= settings.promote_min_rows and paired.p_value < settings.promote_pvalue
        findings.append(
            Finding(
                "shadow_better",
                "challenger",
                paired.challenger_rmse,
                paired.champion_rmse,
                better,
                f"shadow RMSE {paired.challenger_rmse:.4g} vs champion {paired.champion_rmse:.4g} on "
                f"{paired.rows} live rows (paired DM p = {paired.p_value:.2g})",
            )
        )

    daily = performance.skill_by_period(realised, "1d", lag) if realised.height else pl.DataFrame()
    weekly = performance.skill_by_period(realised, "1w", lag) if realised.height else pl.DataFrame()
    summary = {
        "at": now.isoformat(),
        "served_rows": inputs.served.height,
        "realised_rows": realised.height,
        "drift_share": share,
        "drifted_features": features_only.filter(pl.col("drifted"))["feature"].to_list(),
        "bar_age_minutes": age,
        "article_age_minutes": article_age,
        "quarantine_rate": rate,
        "realised": performance.skill(y, pred, lag) if len(y) >= 2 else {},
        "reference_rmse": inputs.reference_rmse,
        "decay": None if decay is None else decay.__dict__,
        "paired": None if paired is None else paired.__dict__,
    }
    return Outcome(findings, drift_frame, missing, daily, weekly, decay, paired, summary)


def _age_message(what: str, minutes: float) -> str:
    if not math.isfinite(minutes):
        return f"no {what} stored for this instrument"
    return f"newest {what} {minutes:.0f} trading minutes old"
