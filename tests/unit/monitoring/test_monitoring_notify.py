"""Alert channels against a real SMTP server and an HTTP receiver on loopback; credentials never logged."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from spxcast.cli._common import redact_log_record
from spxcast.config import MonitoringSettings
from spxcast.monitoring import alerts, notify

PASSWORD = "smtp-pass-5f3a9c1e7b"
HOOK_SECRET = "T000/B000/hook-9d8e7f6a5b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            return AuthResult(success=data.password == PASSWORD.encode())
        return AuthResult(success=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def hook() -> Iterator[tuple[list[tuple[str, dict[str, Any]]], int]]:
    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


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
