"""Alert channels: SMTP email (HTML summary, report attached) and a Slack-compatible JSON webhook.

I/O edge. Credentials come from the settings (``SPXCAST_MONITORING__SMTP_PASSWORD``,
``SPXCAST_MONITORING__WEBHOOK_URL`` in the environment); they are registered with
:func:`spxcast.errors.register_secret` before any connection, so no message, log line or recorded result
shows them. A channel that fails is reported (redacted) and does not stop the others.
"""

from __future__ import annotations

import html
import logging
import math
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from spxcast.config import MonitoringSettings
from spxcast.errors import redact, register_secret
from spxcast.monitoring.alerts import SEVERITY_ORDER, NewAlert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notification:
    """One message about the alerts a monitoring run opened."""

    subject: str
    text: str
    html: str
    payload: dict[str, Any]
    attachment: Path | None


def compose(
    opened: Sequence[NewAlert], run_id: str, report: Path | None, extra: Sequence[str] = ()
) -> Notification:
    """The message for ``opened`` alerts (most severe first); ``extra`` lines (e.g. a retrain suggestion)."""
    ordered = sorted(opened, key=lambda a: -SEVERITY_ORDER[a.severity])
    worst = ordered[0].severity if ordered else "info"
    subject = f"[spxcast {worst}] {len(ordered)} new alert(s) in monitoring run {run_id}"
    lines = [f"{a.severity.upper()} {a.finding.key}: {a.finding.message}" for a in ordered] + list(extra)
    rows = "".join(
        f"<tr><td>{html.escape(a.severity)}</td><td>{html.escape(a.finding.key)}</td>"
        f"<td>{a.finding.value:.4g}</td><td>{a.finding.threshold:.4g}</td>"
        f"<td>{html.escape(a.finding.message)}</td></tr>"
        for a in ordered
    )
    notes = "".join(f"<p>{html.escape(line)}</p>" for line in extra)
    body = (
        f"<html><body><h2>{html.escape(subject)}</h2><table border='1' cellpadding='4'>"
        "<tr><th>severity</th><th>alert</th><th>value</th><th>threshold</th><th>detail</th></tr>"
        f"{rows}</table>{notes}<p>The drift report of the run is attached.</p></body></html>"
    )
    payload = {
        "text": subject + "\n" + "\n".join(lines),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{subject}*"}},
            *({"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in lines),
        ],
        "run_id": run_id,
        "alerts": [
            {
                "key": a.finding.key,
                "check": a.finding.check,
                "subject": a.finding.subject,
                "severity": a.severity,
                "value": a.finding.value if math.isfinite(a.finding.value) else None,
                "threshold": a.finding.threshold if math.isfinite(a.finding.threshold) else None,
                "message": a.finding.message,
            }
            for a in ordered
        ],
    }
    return Notification(subject, "\n".join(lines), body, payload, report)


def send_email(settings: MonitoringSettings, note: Notification) -> None:
    """Send ``note`` to ``settings.email_to`` through ``settings.smtp_host`` (STARTTLS when offered and
    enabled; login when a user is set)."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    register_secret(password)
    message = EmailMessage()
    message["Subject"] = note.subject
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.email_to)
    message.set_content(note.text)
    message.add_alternative(note.html, subtype="html")
    if note.attachment is not None and note.attachment.exists():
        message.add_attachment(
            note.attachment.read_bytes(), maintype="text", subtype="html", filename=note.attachment.name
        )
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.channel_timeout_s) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls and smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, password or "")
        smtp.send_message(message)


def send_webhook(settings: MonitoringSettings, note: Notification) -> None:
    """POST ``note.payload`` as JSON (Slack incoming-webhook compatible: ``text`` and ``blocks``)."""
    assert settings.webhook_url is not None
    url = settings.webhook_url.get_secret_value()
    register_secret(url)
    response = httpx.post(url, json=note.payload, timeout=settings.channel_timeout_s)
    if response.status_code >= 300:
        raise OSError(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")


def notify(settings: MonitoringSettings, note: Notification) -> dict[str, str]:
    """Send ``note`` on every configured channel; returns ``{channel: "sent" | "failed: <reason>"}``."""
    results: dict[str, str] = {}
    channels = []
    if settings.smtp_host and settings.email_to:
        channels.append(("email", send_email))
    if settings.webhook_url is not None:
        channels.append(("webhook", send_webhook))
    for name, send in channels:
        try:
            send(settings, note)
            results[name] = "sent"
        except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
            reason = redact(f"{type(exc).__name__}: {exc}")
            log.warning("alert channel %s failed: %s", name, reason)
            results[name] = f"failed: {reason}"
    return results
