"""The prediction log: write-behind batches, the outage spool, and exactly-once replay by prediction id."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select

from pg_cluster import free_port
from spxcast.db import PredictionRecord, connect
from spxcast.serving.predlog import LogEntry, PredictionLog


def entry(i: int) -> LogEntry:
    return LogEntry(
        prediction_id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
        instrument="SPX500_USD",
        granularity="M1",
        horizon_minutes=30,
        bar_ts=datetime(2024, 1, 2, 14, i % 60, tzinfo=UTC),
        feature_as_of=datetime(2024, 1, 2, 14, i % 60, 59, tzinfo=UTC),
        model_name="m",
        model_version=1,
        slot="blue",
        role="served",
        predicted_pct=0.01 * i,
        lower_pct=-0.1,
        upper_pct=0.1,
        price=4700.0,
        names=("f0", "f1"),
        values=np.array([1.5, np.nan], np.float32),
    )


def count(engine: object) -> tuple[int, int]:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        rows = connection.execute(
            select(func.count(), func.count(func.distinct(PredictionRecord.prediction_id)))
        )
        total, distinct = rows.one()
    return int(total), int(distinct)


def test_rows_spool_while_the_database_is_down_and_replay_exactly_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool.ndjson"
    down = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x?connect_timeout=1")
    outage = PredictionLog(down, spool, batch_rows=7, flush_s=0.05).start()
    entries = [entry(i) for i in range(50)]
    for e in entries:
        outage.submit(e)
    outage.close()
    assert outage.written == 0 and outage.spooled == 50 and outage.last_error is not None
    kept = tmp_path / "spool.copy"
    shutil.copy(spool, kept)

    engine = connect(f"sqlite:///{tmp_path / 'app.db'}")
    back = PredictionLog(engine, spool, flush_s=0.05).start()
    back.submit(entry(99))
    back.close()
    assert not spool.exists()
    assert count(engine) == (51, 51)

    # A crash after the replay's commit but before the spool was deleted: the next start replays it again.
    shutil.copy(kept, spool)
    again = PredictionLog(engine, spool, flush_s=0.05).start()
    again.close()
    assert not spool.exists()
    assert count(engine) == (51, 51)
    with engine.connect() as connection:
        stored = connection.execute(
            select(PredictionRecord).where(PredictionRecord.prediction_id == entries[3].prediction_id)
        ).one()
    assert stored.features == '{"f0": 1.5, "f1": null}'
    assert stored.predicted_pct == entries[3].predicted_pct


def test_two_processes_logging_through_one_spool_path_each_spool_their_own_file_and_replay_once(
    tmp_path: Path,
) -> None:
    """Two uvicorn workers share the configured spool path: each claims its own file (a flock held for the
    log's life), so neither replays and deletes a file the other is still appending to; a file left by a
    worker that is gone is replayed by another, exactly once."""
    spool = tmp_path / "spool.ndjson"
    down = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x?connect_timeout=1")
    first = PredictionLog(down, spool, flush_s=0.05).start()
    second = PredictionLog(down, spool, flush_s=0.05).start()
    assert first.spool == spool and second.spool == tmp_path / "spool.1.ndjson"
    entries = [entry(i) for i in range(40)]
    for i, e in enumerate(entries):
        (first if i % 2 else second).submit(e)
    second.close()  # the worker holding spool.1 goes away with its 20 rows spooled
    first.close()
    assert first.spooled == second.spooled == 20
    assert spool.exists() and second.spool.exists()

    engine = connect(f"sqlite:///{tmp_path / 'app.db'}")
    third = PredictionLog(down, spool, flush_s=0.05).start()  # a restarted worker, the database still down
    fourth = PredictionLog(engine, spool, flush_s=0.05, retry_s=0.05).start()
    assert (third.spool, fourth.spool) == (spool, tmp_path / "spool.1.ndjson")
    fourth.close()  # replays its own file; spool.ndjson is held by a live log, so it is left alone
    assert count(engine) == (20, 20) and spool.exists() and not fourth.spool.exists()
    third.close()
    back = PredictionLog(engine, spool, flush_s=0.05).start()
    back.close()
    assert count(engine) == (40, 40) and not spool.exists()
    with engine.connect() as connection:
        logged = set(connection.execute(select(PredictionRecord.prediction_id)).scalars())
    assert logged == {e.prediction_id for e in entries}


def test_a_log_replays_a_spool_left_by_a_process_that_is_gone(tmp_path: Path) -> None:
    spool = tmp_path / "spool.ndjson"
    down = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x?connect_timeout=1")
    a, b = PredictionLog(down, spool, flush_s=0.05).start(), PredictionLog(down, spool, flush_s=0.05).start()
    b.submit(entry(1))
    b.close()
    a.close()
    orphan = tmp_path / "spool.1.ndjson"
    assert orphan.exists() and not spool.exists()
    engine = connect(f"sqlite:///{tmp_path / 'app.db'}")
    alone = PredictionLog(engine, spool, flush_s=0.05).start()  # claims spool.ndjson, adopts spool.1
    alone.close()
    assert count(engine) == (1, 1) and not orphan.exists()
