"""The prediction log: every prediction (served and shadow) reaches the ``predictions`` table, none twice.

Requests only put an entry on an in-memory queue; one writer thread batches entries into transactions.
When the app database is unreachable, batches go to an append-only spool file (one JSON line per row,
flushed and fsynced) and keep going there while it has rows, so order is kept. Every ``retry_s`` the writer
replays the whole spool in one transaction with insert-or-ignore on the prediction id and deletes the file
only after the commit: a crash at any point leaves the rows in the database or in the spool, and a row
replayed twice is ignored the second time (exactly once, keyed by prediction id).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from spxcast.db import PredictionRecord

log = logging.getLogger(__name__)

_TIMES = ("created_at", "bar_ts", "feature_as_of")


@dataclass(frozen=True)
class LogEntry:
    """One prediction as logged. Returns and bounds in percent; times UTC; ``values`` in ``names`` order."""

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
        """The ``predictions`` row (features as JSON; NaN as null)."""
        values = [None if not np.isfinite(v) else float(v) for v in self.values]
        fields = {k: v for k, v in asdict(self).items() if k not in ("names", "values")}
        return {**fields, "features": json.dumps(dict(zip(self.names, values, strict=True)))}


def insert_ignoring_duplicates(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``predictions`` in one transaction; ids already there are skipped."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    table = cast(Table, PredictionRecord.__table__)
    if engine.dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing(index_elements=["prediction_id"])
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["prediction_id"])
    with engine.begin() as connection:
        connection.execute(statement, rows)


class PredictionLog:
    """Write-behind log with an outage spool; :meth:`submit` never blocks and never raises on DB errors.

    The writer wakes every ``flush_s`` seconds and writes what the queue holds, ``batch_rows`` per
    transaction."""

    def __init__(
        self,
        engine: Engine,
        spool: Path,
        batch_rows: int = 500,
        flush_s: float = 0.2,
        retry_s: float = 1.0,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.spool = spool
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.retry_s = retry_s
        self.on_written = on_written
        self.written = 0
        self.spooled = 0
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._last_retry = 0.0
        self._stopping = threading.Event()
        spool.parent.mkdir(parents=True, exist_ok=True)

    # ----- the request side
    def submit(self, entry: LogEntry) -> None:
        self._queue.put(entry)

    def depth(self) -> int:
        """Entries waiting in memory (not yet in the database or the spool)."""
        return self._queue.qsize()

    @property
    def outage(self) -> bool:
        """Whether rows are waiting in the spool for the database to come back."""
        return self.spool.exists() and self.spool.stat().st_size > 0

    def writable(self) -> bool:
        """The writer runs and the spool directory accepts files (the log can take rows)."""
        return self._thread.is_alive() and os.access(self.spool.parent, os.W_OK)

    # ----- lifecycle
    def start(self) -> PredictionLog:
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued (to the database or the spool), then stop the writer."""
        if self._thread.is_alive():
            self._stopping.set()
            self._thread.join(timeout)

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
            for start in range(0, len(batch), self.batch_rows):
                self._write([entry.row() for entry in batch[start : start + self.batch_rows]])
            if self.outage and (stopping or time.monotonic() - self._last_retry >= self.retry_s):
                self._replay()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if not self.outage:
            try:
                insert_ignoring_duplicates(self.engine, rows)
                self._count(len(rows))
                return
            except SQLAlchemyError as exc:
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
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
        """Insert every spooled row (duplicates ignored) and delete the spool after the commit."""
        self._last_retry = time.monotonic()
        if not self.spool.exists():
            return
        rows = list(_read_spool(self.spool))
        try:
            insert_ignoring_duplicates(self.engine, rows)
        except SQLAlchemyError as exc:
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            return
        self.spool.unlink()
        self.last_error = None
        self._count(len(rows))
        log.warning("app database is back: replayed %d spooled predictions", len(rows))

    def _count(self, n: int) -> None:
        self.written += n
        if self.on_written is not None:
            self.on_written(n)


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
