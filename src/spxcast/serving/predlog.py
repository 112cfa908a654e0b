"""The prediction log: every prediction (served and shadow) reaches the ``predictions`` table, none twice.

Requests only put an entry on an in-memory queue; one writer thread batches entries into transactions.
When the app database is unreachable, batches go to an append-only spool file (one JSON line per row,
flushed and fsynced) and keep going there while it has rows, so order is kept. Every ``retry_s`` the writer
replays the whole spool in one transaction with insert-or-ignore on the prediction id and deletes the file
only after the commit: a crash at any point leaves the rows in the database or in the spool, and a row
replayed twice is ignored the second time (exactly once, keyed by prediction id).

Several processes (uvicorn workers) may log through one configured spool path: each claims its own spool
file (the path itself, else ``<stem>.1<suffix>``, ``<stem>.2<suffix>``, ...) by holding an ``flock`` on
``<file>.lock`` for its life, and replays the spool files of slots nobody holds (a worker that died with
rows spooled) as well as its own.

The writer shares the GIL with the event loop, so it does little Python per row: rows are inserted with one
plain DBAPI ``executemany`` of a statement compiled once per column set (SQLAlchemy's bind processors
applied by hand), not through SQLAlchemy's per-row execution machinery.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
from sqlalchemy import Dialect, Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from spxcast.db import PredictionRecord
from spxcast.locks import LockHeld, exclusive

log = logging.getLogger(__name__)

_TIMES = ("created_at", "bar_ts", "feature_as_of")


class LogEntry(NamedTuple):
    """One prediction as logged. Returns and bounds in percent; times UTC; ``values`` in ``names`` order.

    A named tuple: built on every request, it must be cheap to make (a frozen dataclass is several times
    slower to construct)."""

    prediction_id: str
    created_at: datetime
    instrument: str
    granularity: str
    horizon_minutes: int
    bar_ts: datetime | None
    feature_as_of: datetime | None
    model_name: str
    model_version: int
    slot: str
    role: str
    predicted_pct: float
    lower_pct: float | None
    upper_pct: float | None
    price: float | None
    names: tuple[str, ...]
    values: np.ndarray

    def row(self) -> dict[str, Any]:
        """The ``predictions`` row (features as JSON; NaN and infinities as null)."""
        values = [v if math.isfinite(v) else None for v in self.values.tolist()]
        row = dict(zip(_ROW_FIELDS, self, strict=False))
        row["features"] = json.dumps(dict(zip(self.names, values, strict=True)))
        return row


_ROW_FIELDS = LogEntry._fields[: LogEntry._fields.index("names")]


def insert_ignoring_duplicates(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the keys of the first) into ``predictions`` in one transaction; ids
    already there are skipped."""
    if not rows:
        return
    columns = tuple(rows[0])
    sql, processors, positional = _insert_statement(engine.dialect, columns)
    encoded = [
        tuple(
            v if p is None else p(v) for p, v in zip(processors, map(row.__getitem__, columns), strict=True)
        )
        for row in rows
    ]
    params = encoded if positional else [dict(zip(columns, values, strict=True)) for values in encoded]
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, params)


@lru_cache(maxsize=32)
def _insert_statement(
    dialect: Dialect, columns: tuple[str, ...]
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...], bool]:
    """The insert-or-ignore SQL for ``columns`` in ``dialect``'s parameter style, each column's bind
    processor (None when the driver takes the Python value as it is), and whether parameters are
    positional (in ``columns`` order) rather than named."""
    from sqlalchemy.dialects import postgresql, sqlite

    table = cast(Table, PredictionRecord.__table__)
    if dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing(index_elements=["prediction_id"])
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["prediction_id"])
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    order = compiled.positiontup
    if order is not None and tuple(order) != columns:
        raise AssertionError(f"compiled insert binds {order}, expected {columns}")  # pragma: no cover
    processors = tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return str(compiled), processors, order is not None


class PredictionLog:
    """Write-behind log with an outage spool; :meth:`submit` never blocks and never raises on DB errors.

    The writer wakes every ``flush_s`` seconds and writes what the queue holds, ``batch_rows`` per
    transaction. ``spool`` is the configured spool path; :meth:`start` claims this process's spool file
    (:attr:`spool`, that path unless another live process holds it). ``on_written(n)`` is called after
    ``n`` rows are committed, ``on_cycle(depth, spooled)`` on every wake with the rows found waiting and
    the rows spooled since start (for metrics; both run on the writer thread)."""

    def __init__(
        self,
        engine: Engine,
        spool: Path,
        batch_rows: int = 500,
        flush_s: float = 0.2,
        retry_s: float = 1.0,
        on_written: Callable[[int], None] | None = None,
        on_cycle: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.configured_spool = spool
        self.spool = spool
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.retry_s = retry_s
        self.on_written = on_written
        self.on_cycle = on_cycle
        self.written = 0
        self.spooled = 0
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[LogEntry] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._last_retry = 0.0
        self._stopping = threading.Event()
        self._claim = ExitStack()
        spool.parent.mkdir(parents=True, exist_ok=True)

    # ----- the request side
    def submit(self, entry: LogEntry) -> None:
        self._queue.put(entry)

    def depth(self) -> int:
        """Entries waiting in memory (not yet in the database or the spool)."""
        return self._queue.qsize()

    @property
    def outage(self) -> bool:
        """Whether rows are waiting in this process's spool for the database to come back."""
        return self.spool.exists() and self.spool.stat().st_size > 0

    def writable(self) -> bool:
        """The writer runs and the spool directory accepts files (the log can take rows)."""
        return self._thread.is_alive() and os.access(self.spool.parent, os.W_OK)

    # ----- lifecycle
    def start(self) -> PredictionLog:
        self.spool = self._claim.enter_context(claim_spool(self.configured_spool))
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued (to the database or the spool), then stop the writer and give up the
        spool file."""
        if self._thread.is_alive():
            self._stopping.set()
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._claim.close()

    # ----- the writer thread
    def _run(self) -> None:
        self._replay()
        stopping = False
        while not stopping:
            # Wake on a timer, not per entry: a thread woken by every put would take the GIL from the
            # event loop on every request.
            stopping = self._stopping.wait(self.flush_s)
            batch: list[LogEntry] = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if self.on_cycle is not None:
                self.on_cycle(len(batch), self.spooled)
            for start in range(0, len(batch), self.batch_rows):
                self._write([entry.row() for entry in batch[start : start + self.batch_rows]])
            due = stopping or time.monotonic() - self._last_retry >= self.retry_s
            if due and (self.outage or (not stopping and _orphans(self.configured_spool))):
                self._replay()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if not self.outage:
            try:
                insert_ignoring_duplicates(self.engine, rows)
                self._count(len(rows))
                return
            except SQLAlchemyError as exc:
                self.last_error = _short(exc)
                log.warning(
                    "app database unreachable (%s); spooling predictions to %s", self.last_error, self.spool
                )
                self._last_retry = time.monotonic()
        self._append_to_spool(rows)

    def _append_to_spool(self, rows: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(_jsonable(row)) + "\n" for row in rows)
        with self.spool.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        self.spooled += len(rows)

    def _replay(self) -> None:
        """Replay this process's spool, then the spools no live process holds (each: insert every row,
        duplicates ignored, and delete the file after the commit)."""
        self._last_retry = time.monotonic()
        if not self._replay_file(self.spool):
            return
        for orphan in _orphans(self.configured_spool):
            try:
                with exclusive(_lock_path(orphan), blocking=False, holder=f"replaying pid {os.getpid()}"):
                    if not self._replay_file(orphan):
                        return
            except LockHeld:
                continue  # its owner is alive (or another process is replaying it)

    def _replay_file(self, spool: Path) -> bool:
        """Replay ``spool`` (whose lock this process holds); False when the database is still down."""
        if not spool.exists():
            return True
        rows = _read_spool(spool)
        try:
            insert_ignoring_duplicates(self.engine, rows)
        except SQLAlchemyError as exc:
            self.last_error = _short(exc)
            return False
        spool.unlink()
        self.last_error = None
        self._count(len(rows))
        log.warning("app database is back: replayed %d spooled predictions from %s", len(rows), spool)
        return True

    def _count(self, n: int) -> None:
        self.written += n
        if self.on_written is not None:
            self.on_written(n)


@contextmanager
def claim_spool(configured: Path) -> Iterator[Path]:
    """Hold, for the ``with`` block, the first spool file of ``configured`` that no other live process
    holds: the path itself, else ``<stem>.1<suffix>``, ``<stem>.2<suffix>``, ...; yields its path."""
    for index in itertools.count():
        path = _spool_file(configured, index)
        lock = exclusive(_lock_path(path), blocking=False, holder=f"prediction log of pid {os.getpid()}")
        try:
            lock.__enter__()
        except LockHeld:
            continue
        try:
            yield path
        finally:
            lock.__exit__(None, None, None)
        return


def _spool_file(configured: Path, index: int) -> Path:
    return configured if index == 0 else configured.with_name(f"{configured.stem}.{index}{configured.suffix}")


def _lock_path(spool: Path) -> Path:
    return spool.with_name(spool.name + ".lock")


def _orphans(configured: Path) -> list[Path]:
    """The spool files of ``configured`` that exist (any process's; :meth:`PredictionLog._replay` skips
    those a live process holds)."""
    pattern = re.compile(rf"{re.escape(configured.stem)}(\.\d+)?{re.escape(configured.suffix)}")
    try:
        names = [e.name for e in os.scandir(configured.parent) if pattern.fullmatch(e.name)]
    except OSError:
        return []
    return [configured.parent / name for name in sorted(names)]


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _read_spool(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                # Only a line cut by a crash mid-append can be partial; its request was never answered
                # with a durable log row, and the rest of the spool is intact.
                log.error("spool %s line %d is not complete JSON; skipped", path, number)
                continue
            for key in _TIMES:
                if row.get(key) is not None:
                    row[key] = datetime.fromisoformat(row[key])
            rows.append(row)
    return rows
