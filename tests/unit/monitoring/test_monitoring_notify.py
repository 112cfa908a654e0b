"""Alert channels against a real SMTP server and an HTTP receiver on loopback; credentials never logged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from monitoring_support import Inbox, free_port, smtp_server, webhook_receiver
from spxcast.cli._common import redact_log_record
from spxcast.config import MonitoringSettings
from spxcast.monitoring import alerts, notify

PASSWORD = "smtp-pass-5f3a9c1e7b"
HOOK_SECRET = "T000/B000/hook-9d8e7f6a5b"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server(PASSWORD) as server:
        yield server


@pytest.fixture
def hook() -> Iterator[tuple[list[tuple[str, dict[str, Any]]], int]]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captured logs at DEBUG through the filter every spxcast entry point installs on its handlers."""
    caplog.handler.addFilter(redact_log_record)
    yield caplog
    caplog.handler.removeFilter(redact_log_record)


def opened() -> list[alerts.NewAlert]:
    decay = alerts.Finding("decay", "model", 1.45, 1.2, True, "realised RMSE 45 % above the champion's test")
    stale = alerts.Finding("bar_age", "bars", 30, 10, True, "no bar for 30 trading minutes")
    return [alerts.NewAlert(stale, "warning"), alerts.NewAlert(decay, "critical")]


def test_alert_reaches_smtp_with_report_and_webhook_without_leaking_credentials(
    smtp: tuple[Inbox, int],
    hook: tuple[list[tuple[str, dict[str, Any]]], int],
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
) -> None:
    inbox, smtp_port = smtp
    received, hook_port = hook
    report = tmp_path / "drift_report.html"
    report.write_text("<html>drift report</html>")
    settings = MonitoringSettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_user="alerts",
        smtp_password=SecretStr(PASSWORD),
        email_to=["oncall@example.org"],
        webhook_url=SecretStr(f"http://127.0.0.1:{hook_port}/{HOOK_SECRET}"),
    )
    note = notify.compose(opened(), "monitor-1", report)
    assert notify.notify(settings, note) == {"email": "sent", "webhook": "sent"}

    assert inbox.logins == [(b"alerts", PASSWORD.encode())]
    (message,) = inbox.messages
    assert message["Subject"].startswith("[spxcast critical] 2 new alert(s)")
    bodies = [p for p in message.walk() if p.get_content_type() == "text/html" and not p.get_filename()]
    assert "decay:model" in bodies[0].get_payload(decode=True).decode()
    attachments = [p for p in message.walk() if p.get_filename() == "drift_report.html"]
    assert attachments and attachments[0].get_payload(decode=True) == b"<html>drift report</html>"

    ((path, payload),) = received
    assert path == f"/{HOOK_SECRET}"
    assert payload["text"].startswith("[spxcast critical]") and payload["blocks"]
    assert [a["key"] for a in payload["alerts"]] == ["decay:model", "bar_age:bars"]
    assert PASSWORD not in logs.text and HOOK_SECRET not in logs.text


def test_failing_channels_are_reported_redacted(logs: pytest.LogCaptureFixture) -> None:
    dead = free_port()
    settings = MonitoringSettings(
        smtp_host="127.0.0.1",
        smtp_port=dead,
        smtp_user="alerts",
        smtp_password=SecretStr(PASSWORD),
        email_to=["oncall@example.org"],
        webhook_url=SecretStr(f"http://127.0.0.1:{dead}/{HOOK_SECRET}"),
    )
    results = notify.notify(settings, notify.compose(opened(), "monitor-2", None))
    assert results["email"].startswith("failed: ConnectionRefusedError")
    assert results["webhook"].startswith("failed: ConnectError")
    for text in (logs.text, json.dumps(results)):
        assert PASSWORD not in text and HOOK_SECRET not in text
