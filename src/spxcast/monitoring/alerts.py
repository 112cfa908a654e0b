"""Alert rules, deduplication and cooldown (pure: the open alerts and the clock are passed in).

A monitoring run produces :class:`Finding` objects, one per (check, subject) it judged — breached or not.
:func:`plan` turns them into what changes in the ``alerts`` table:

- a breached finding with an open (or acknowledged) alert of the same key only refreshes that alert
  (``last_seen``, ``count``, value): one condition, one alert, one notification;
- a breached finding with no open alert opens one, unless an alert of the same key was raised less than the
  rule's ``cooldown_minutes`` ago (then nothing is sent: a flapping condition notifies once per cooldown);
- an open alert whose finding is no longer breached is resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from spxcast.config import AlertRule

SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Finding:
    """The verdict of one check on one subject (a feature, ``prediction``, ``bars``, ``model`` ...)."""

    check: str
    subject: str
    value: float
    threshold: float
    breached: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.check}:{self.subject}"


@dataclass(frozen=True)
class KnownAlert:
    """What :func:`plan` needs to know of an alert already in the table."""

    id: int
    key: str
    status: str
    raised_at: datetime


@dataclass(frozen=True)
class NewAlert:
    finding: Finding
    severity: str


@dataclass(frozen=True)
class Plan:
    """Changes to apply: alerts to open (and notify), open alerts to refresh, open alerts to resolve."""

    open: list[NewAlert]
    refresh: list[tuple[int, Finding]]
    resolve: list[int]
    suppressed: list[Finding]


def rule_for(rules: Sequence[AlertRule], check: str) -> AlertRule | None:
    """The rule configured for ``check`` (the first one), or None when the check raises no alerts."""
    return next((r for r in rules if r.check == check), None)


def threshold_for(rules: Sequence[AlertRule], check: str, default: float) -> float:
    """The rule's threshold for ``check``, or ``default`` when it has none."""
    rule = rule_for(rules, check)
    return default if rule is None or rule.threshold is None else float(rule.threshold)


def plan(
    findings: Iterable[Finding], known: Sequence[KnownAlert], rules: Sequence[AlertRule], now: datetime
) -> Plan:
    """Deduplicate and rate-limit ``findings`` against the ``known`` alerts (see the module docstring)."""
    active = {a.key: a for a in known if a.status in ("open", "acknowledged")}
    last_raised: dict[str, datetime] = {}
    for alert in known:
        if alert.key not in last_raised or alert.raised_at > last_raised[alert.key]:
            last_raised[alert.key] = alert.raised_at
    to_open: list[NewAlert] = []
    refresh: list[tuple[int, Finding]] = []
    resolve: list[int] = []
    suppressed: list[Finding] = []
    for finding in findings:
        rule = rule_for(rules, finding.check)
        current = active.get(finding.key)
        if not finding.breached:
            if current is not None:
                resolve.append(current.id)
            continue
        if rule is None:
            continue
        if current is not None:
            refresh.append((current.id, finding))
        elif finding.key in last_raised and now - last_raised[finding.key] < timedelta(
            minutes=rule.cooldown_minutes
        ):
            suppressed.append(finding)
        else:
            to_open.append(NewAlert(finding, rule.severity))
    return Plan(to_open, refresh, resolve, suppressed)
