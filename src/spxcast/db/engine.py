"""Engines for the app database and its migrations.

SQLite runs in WAL mode with a busy timeout so the runner's processes can write concurrently; any other
URL (``postgresql+psycopg://…``) is used as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from spxcast.errors import ConfigError, SpxcastError

_MIGRATIONS = Path(__file__).parent / "migrations"


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


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration to ``engine`` (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise SpxcastError(f"cannot migrate the app database at {engine.url!r}: {exc}") from exc


def connect(url: str, sqlite_busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for the app database with every migration applied."""
    engine = make_engine(url, sqlite_busy_timeout_ms)
    upgrade(engine)
    return engine
