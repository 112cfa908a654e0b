"""Where the live loop of a series stands: the newest bar it predicted, logged and published.

The position lives in the app database (table ``live_positions``) and moves in the same transaction as the
predictions of the bars it covers (:func:`commit_bars`), so a crash at any point leaves either both or
neither: a restart resumes at the next bar after the position, and a bar predicted again after a crash
gets the same prediction ids (:func:`prediction_id`), which the log ignores.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from spxcast.db.models import LivePosition, PredictionRecord

_NAMESPACE = uuid.UUID("0f6b7a52-6d1f-4a39-9d55-6c3b7f0e2a11")


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


def commit_bars(
    engine: Engine,
    instrument: str,
    granularity: str,
    bar_ts: datetime,
    bars: int,
    rows: list[dict[str, Any]],
    now: datetime,
) -> None:
    """One transaction: insert the prediction ``rows`` (ids already logged are skipped) and move the
    position of the series to ``bar_ts`` (``bars`` more bars processed)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    predictions = cast(Table, PredictionRecord.__table__)
    positions = cast(Table, LivePosition.__table__)
    upsert = dialect.insert(positions).values(
        instrument=instrument, granularity=granularity, bar_ts=bar_ts, updated_at=now, bars=bars
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["instrument", "granularity"],
        set_={"bar_ts": bar_ts, "updated_at": now, "bars": positions.c.bars + bars},
    )
    with engine.begin() as connection:
        if rows:
            connection.execute(
                dialect.insert(predictions).on_conflict_do_nothing(index_elements=["prediction_id"]), rows
            )
        connection.execute(upsert)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
