"""Real servers on loopback for integration tests.

Without ``SPXCAST_REQUIRE_SERVICES=1`` an unreachable server skips the test with the reason; with it (CI),
an unreachable server fails the test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def services_required() -> bool:
    return os.environ.get("SPXCAST_REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """A server or tool a test needs is missing: fail under SPXCAST_REQUIRE_SERVICES=1 (CI), else skip, with
    ``message`` (what is missing and how to get it)."""
    if services_required():
        pytest.fail(f"{message}; SPXCAST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; set SPXCAST_REQUIRE_SERVICES=1 to make this a failure")


def require_port(name: str, host: str, port: int) -> None:
    """Skip (or fail under SPXCAST_REQUIRE_SERVICES=1) when nothing listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        unavailable(f"{name} is not reachable at {host}:{port} ({exc}); start it")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new empty PostgreSQL database for one test; yields its SQLAlchemy URL and drops it afterwards."""
    require_port("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    import psycopg

    name = f"spxcast_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
