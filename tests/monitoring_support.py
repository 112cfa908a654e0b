"""Loopback SMTP server and HTTP receiver shared by the monitoring tests."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message and LOGIN it receives; ``password`` is the one accepted."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.messages: list[Message] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            return AuthResult(success=data.password == self.password.encode())
        return AuthResult(success=False)


@contextmanager
def smtp_server(password: str) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(password)
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@contextmanager
def serving_api(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port in a thread; yields its base URL, stops it after."""
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def webhook_receiver() -> Iterator[tuple[list[tuple[str, dict[str, Any]]], int]]:
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
        yield received, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def spawn_child(ctx: Any) -> dict[str, Any]:
    """Runner task: a child run of a one-task DAG under this task's run (as the automatic retrain does).
    ``<home>/child-parent`` may name another parent (the child must then be refused)."""
    from spxcast.pipeline.runner import run_dag
    from spxcast.pipeline.spec import DAG, Task

    named = ctx.settings.home / "child-parent"
    parent = named.read_text() if named.exists() else ctx.run_id
    child = DAG("child", (Task("recorded", "monitoring_support:record", retries=0),))
    summary = run_dag(ctx.settings, child, workers=1, parent=parent)
    return {"child_run": summary.run_id, "child_status": summary.status}


def record(ctx: Any) -> dict[str, Any]:
    """Runner task: counts its runs in ``<home>/markers/<task>``."""
    marker = ctx.settings.home / "markers" / ctx.task
    marker.parent.mkdir(parents=True, exist_ok=True)
    count = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(count))
    return {"runs": count}
