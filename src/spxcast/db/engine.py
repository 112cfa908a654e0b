"""Engines for the app database and its migrations.

SQLite runs in WAL mode with a busy timeout so the runner's processes can write concurrently; any other
URL (``postgresql+psycopg://…``) is used as given. Migrations are serialised across processes (several
``spxcast serve`` replicas or runner workers starting at once on one fresh database would otherwise race to
create the same tables): by an ``flock`` on ``<database file>.migrate.lock`` next to a SQLite file, and by a
transaction-scoped advisory lock on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from spxcast.errors import ConfigError, SpxcastError
from spxcast.locks import exclusive

_MIGRATIONS = Path(__file__).parent / "migrations"
# Key of the PostgreSQL advisory lock held while migrating (any fixed 64-bit integer private to spxcast).
_PG_MIGRATION_LOCK = 0x5350_5843_4D49_4752  # "SPXCMIGR"


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def make_engine(url: str, sqlite_busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for ``url``; SQLite files get their parent directory created and WAL enabled."""
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": sqlite_busy_timeout_ms / 1000})
            event.listen(engine, "connect", _sqlite_pragmas(sqlite_busy_timeout_ms))
            return engine
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError) as exc:
        raise ConfigError(f"app database URL {url!r} is not usable: {exc}") from exc


def _sqlite_migration_lock(engine: Engine) -> Any:
    """A context holding the cross-process migration lock of a SQLite file (none for in-memory databases)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return nullcontext()
    return exclusive(Path(f"{database}.migrate.lock"), holder=f"migrating pid {os.getpid()}")


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A transaction on ``engine`` that no other process migrates at the same time."""
    with _sqlite_migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        yield connection


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration to ``engine`` (idempotent; safe from concurrent processes)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with _migrating(engine) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise SpxcastError(f"cannot migrate the app database at {engine.url!r}: {exc}") from exc


def connect(url: str, sqlite_busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for the app database with every migration applied."""
    engine = make_engine(url, sqlite_busy_timeout_ms)
    upgrade(engine)
    return engine
