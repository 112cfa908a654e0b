"""Where the live loop of a series stands, and everything a step of the loop writes, in ONE transaction.

The position (table ``live_positions``: the newest bar processed) moves in the same transaction as
(:func:`commit`):

- the predictions of the bars it covers (ids from :func:`prediction_id`: a bar predicted again after a
  crash gets the same ids, which the log ignores);
- the record of bars that were *not* predicted, with the reason (:func:`unpredicted`): an alert
  ``live_unpredicted:<instrument>/<granularity>`` in the ``alerts`` table per episode, counting its bars
  from the close of the first to the close of the last, resolved when predictions resume;
- the realised returns that became known (labels of earlier bars whose horizon has passed): attached to
  every logged prediction of those bars that has none yet, and returned, so that the caller publishes and
  feeds ACI exactly those -- exactly once, since the null-to-value change happens once, under the write lock.

A crash at any point leaves all of it or none: a restart resumes at the next bar after the position.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from spxcast.db.models import AlertRecord, LivePosition, PredictionRecord

_NAMESPACE = uuid.UUID("0f6b7a52-6d1f-4a39-9d55-6c3b7f0e2a11")

UNPREDICTED_CHECK = "live_unpredicted"
"""The ``check`` of the alerts recording bars the loop processed without any model to predict them."""


def prediction_id(model_name: str, version: int, instrument: str, granularity: str, bar_ts: datetime) -> str:
    """The id of the live prediction of one model version at one bar: the same on every replay."""
    key = f"{model_name}/v{version}/{instrument}/{granularity}/{_utc(bar_ts).isoformat()}"
    return str(uuid.uuid5(_NAMESPACE, key))


def load(engine: Engine, instrument: str, granularity: str) -> datetime | None:
    """The start of the newest bar the loop of this series has processed (None before its first bar)."""
    with engine.connect() as connection:
        found = connection.execute(
            select(LivePosition.bar_ts).where(
                LivePosition.instrument == instrument, LivePosition.granularity == granularity
            )
        ).scalar_one_or_none()
    return None if found is None else _utc(found)


@dataclass(frozen=True)
class Unpredicted:
    """Bars of one step that no model predicted: closes of the first and last (UTC), count, why."""

    first_close: datetime
    last_close: datetime
    bars: int
    reason: str


@dataclass
class Step:
    """What one step of the loop writes.

    ``position``: the start of the newest bar processed (None: the position does not move); ``bars``:
    how many bars it covers; ``predictions``: log rows; ``unpredicted``: bars no model predicted (None
    when the step's bars were predicted; then an open record of unpredicted bars is resolved);
    ``labels``: realised returns known now (percent, by bar start) of bars whose horizon has passed.
    """

    instrument: str
    granularity: str
    horizon_minutes: int
    position: datetime | None = None
    bars: int = 0
    predictions: list[dict[str, Any]] = field(default_factory=list)
    unpredicted: Unpredicted | None = None
    labels: Mapping[datetime, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Realised:
    """A realised return attached to one logged prediction (returns in percent; ``bar_ts`` UTC)."""

    prediction_id: str
    model_name: str
    model_version: int
    bar_ts: datetime
    predicted_pct: float
    realised_pct: float


def commit(engine: Engine, step: Step, now: datetime) -> list[Realised]:
    """Write ``step`` in one transaction; returns the realised returns it attached, in bar order."""
    dialect: Any = postgresql if engine.dialect.name == "postgresql" else sqlite
    positions = cast(Table, LivePosition.__table__)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":  # take the write lock first: what _attach reads stays true
            connection.execute(
                update(positions)
                .where(positions.c.instrument == step.instrument, positions.c.granularity == step.granularity)
                .values(bars=positions.c.bars)
            )
        if step.predictions:
            predictions = cast(Table, PredictionRecord.__table__)
            connection.execute(
                dialect.insert(predictions).on_conflict_do_nothing(index_elements=["prediction_id"]),
                step.predictions,
            )
        if step.position is not None:
            _move(connection, dialect, step, now)
            _record_unpredicted(connection, step, now)
        return _attach(connection, step, now, lock=engine.dialect.name == "postgresql")


def _move(connection: Connection, dialect: Any, step: Step, now: datetime) -> None:
    positions = cast(Table, LivePosition.__table__)
    upsert = dialect.insert(positions).values(
        instrument=step.instrument,
        granularity=step.granularity,
        bar_ts=step.position,
        updated_at=now,
        bars=step.bars,
    )
    connection.execute(
        upsert.on_conflict_do_update(
            index_elements=["instrument", "granularity"],
            set_={"bar_ts": step.position, "updated_at": now, "bars": positions.c.bars + step.bars},
        )
    )


def _series(instrument: str, granularity: str) -> str:
    return f"{instrument}/{granularity}"


def _open_unpredicted(instrument: str, granularity: str) -> Any:
    return select(AlertRecord).where(
        AlertRecord.key == f"{UNPREDICTED_CHECK}:{_series(instrument, granularity)}",
        AlertRecord.status.in_(("open", "acknowledged")),
    )


def _record_unpredicted(connection: Connection, step: Step, now: datetime) -> None:
    """Open or extend the episode of unpredicted bars, or resolve it when this step's bars were predicted."""
    alerts = cast(Table, AlertRecord.__table__)
    found = connection.execute(_open_unpredicted(step.instrument, step.granularity)).first()
    current = None if found is None else found._mapping  # (a Row's .count is tuple.count)
    gap = step.unpredicted
    if gap is None:
        if current is not None and step.bars:
            connection.execute(
                update(alerts)
                .where(alerts.c.id == current["id"])
                .values(status="resolved", resolved_by="live loop", resolved_at=now)
            )
        return
    series = _series(step.instrument, step.granularity)
    first = gap.first_close if current is None else _utc(current["raised_at"])
    count = gap.bars + (0 if current is None else int(current["count"]))
    message = (
        f"{count} bars of {series} closing from {first.isoformat()} to {gap.last_close.isoformat()} "
        f"were not predicted: {gap.reason}"
    )
    if current is None:
        connection.execute(
            alerts.insert().values(
                key=f"{UNPREDICTED_CHECK}:{series}",
                check=UNPREDICTED_CHECK,
                subject=series,
                severity="critical",
                status="open",
                message=message,
                value=float(count),
                threshold=None,
                raised_at=first,
                last_seen=gap.last_close,
                count=count,
                run_id="live loop",
            )
        )
        return
    connection.execute(
        update(alerts)
        .where(alerts.c.id == current["id"])
        .values(message=message, value=float(count), last_seen=gap.last_close, count=count)
    )


def _attach(connection: Connection, step: Step, now: datetime, lock: bool) -> list[Realised]:
    """Attach ``step.labels`` to the logged predictions of those bars that have no realised return yet."""
    if not step.labels:
        return []
    table = cast(Table, PredictionRecord.__table__)
    query = (
        select(
            table.c.prediction_id,
            table.c.model_name,
            table.c.model_version,
            table.c.bar_ts,
            table.c.predicted_pct,
        )
        .where(
            table.c.instrument == step.instrument,
            table.c.granularity == step.granularity,
            table.c.horizon_minutes == step.horizon_minutes,
            table.c.realised_pct.is_(None),
            table.c.bar_ts >= min(step.labels),
            table.c.bar_ts <= max(step.labels),
        )
        .order_by(table.c.bar_ts, table.c.prediction_id)
    )
    if lock:  # PostgreSQL: rows another writer is attaching wait for it (SQLite: one writer already)
        query = query.with_for_update()
    found = []
    for row in connection.execute(query):
        bar_ts = _utc(row.bar_ts)
        value = step.labels.get(bar_ts)
        if value is not None:
            found.append(
                Realised(
                    row.prediction_id, row.model_name, row.model_version, bar_ts, row.predicted_pct, value
                )
            )
    if found:
        connection.execute(
            update(table)
            .where(table.c.prediction_id == bindparam("b_id"), table.c.realised_pct.is_(None))
            .values(realised_pct=bindparam("b_value"), realised_at=now),
            [{"b_id": r.prediction_id, "b_value": r.realised_pct} for r in found],
        )
    return found


def unpredicted(engine: Engine, instrument: str, granularity: str) -> list[AlertRecord]:
    """The episodes of unpredicted bars of a series (open and resolved), oldest first."""
    from sqlalchemy.orm import Session

    query = (
        select(AlertRecord)
        .where(AlertRecord.key == f"{UNPREDICTED_CHECK}:{_series(instrument, granularity)}")
        .order_by(AlertRecord.id)
    )
    with Session(engine) as session:
        return list(session.scalars(query).all())


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
