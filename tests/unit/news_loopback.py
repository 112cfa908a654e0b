"""A tiny HTTP server on 127.0.0.1 whose answers a test scripts: (status, headers, body) per request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[Request], Answer]


@dataclass
class Loopback:
    url: str
    requests: list[Request] = field(default_factory=list)


@contextmanager
def serve(responder: Responder) -> Iterator[Loopback]:
    """Run ``responder`` behind an HTTP server on loopback; yields its base URL and the requests seen."""
    server_state = Loopback("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = Request(
                parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, dict(self.headers.items())
            )
            server_state.requests.append(request)
            status, headers, body = responder(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
