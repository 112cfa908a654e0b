"""The live loop's one transaction (``position.commit``) on the embedded SQLite and a real PostgreSQL: the
position moves with the predictions, each realised return is attached (and returned) exactly once, and bars
no model predicted are counted in one episode that is resolved when predictions resume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text

from services import fresh_postgres_database
from spxcast.db import connect
from spxcast.serving.live import position
from spxcast.serving.predlog import LogEntry

T0 = datetime(2024, 1, 12, 15, tzinfo=UTC)
BAR = timedelta(minutes=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = connect(f"sqlite:///{tmp_path / 'app.db'}")
        yield made
        made.dispose()
        return
    with fresh_postgres_database() as url:
        made = connect(url)
        yield made
        made.dispose()


def _row(i: int, predicted: float = 0.01) -> dict[str, object]:
    ts = T0 + i * BAR
    return LogEntry(
        prediction_id=position.prediction_id("m", 1, "SPX500_USD", "M1", ts),
        created_at=ts + BAR,
        instrument="SPX500_USD",
        granularity="M1",
        horizon_minutes=30,
        bar_ts=ts,
        feature_as_of=ts + BAR,
        model_name="m",
        model_version=1,
        slot="blue",
        role="served",
        predicted_pct=predicted,
        lower_pct=None,
        upper_pct=None,
        price=4700.0,
        names=("a",),
        values=np.array([1.0], np.float32),
    ).row()


def _step(**fields: object) -> position.Step:
    return position.Step("SPX500_USD", "M1", 30, **fields)  # type: ignore[arg-type]


def test_one_transaction_attaches_each_realised_return_once_and_counts_unpredicted_bars(
    engine: Engine,
) -> None:
    now = datetime.now(UTC)
    assert (
        position.commit(
            engine, _step(position=T0 + 3 * BAR, bars=4, predictions=[_row(i) for i in range(4)]), now
        )
        == []
    )
    assert position.load(engine, "SPX500_USD", "M1") == T0 + 3 * BAR

    labels = {T0: 0.5, T0 + BAR: -0.25, T0 + 9 * BAR: 1.0}  # a bar never logged is ignored
    first = position.commit(engine, _step(labels=labels), now)
    assert [(r.bar_ts, r.realised_pct) for r in first] == [(T0, 0.5), (T0 + BAR, -0.25)]
    assert position.load(engine, "SPX500_USD", "M1") == T0 + 3 * BAR, "no position given: it stays"
    assert position.commit(engine, _step(labels=labels), now) == [], "attached once, never again"

    gap = position.Unpredicted(T0 + 5 * BAR, T0 + 6 * BAR, 2, "no model loaded in any serving slot (x)")
    position.commit(engine, _step(position=T0 + 5 * BAR, bars=2, unpredicted=gap), now)
    more = position.Unpredicted(T0 + 7 * BAR, T0 + 7 * BAR, 1, "no model loaded in any serving slot (x)")
    position.commit(engine, _step(position=T0 + 6 * BAR, bars=1, unpredicted=more), now)
    [open_episode] = position.unpredicted(engine, "SPX500_USD", "M1")
    assert (open_episode.count, open_episode.status) == (3, "open")
    assert "3 bars of SPX500_USD/M1" in open_episode.message

    position.commit(engine, _step(position=T0 + 7 * BAR, bars=1, predictions=[_row(7)]), now)
    [closed] = position.unpredicted(engine, "SPX500_USD", "M1")
    assert (closed.count, closed.status, closed.resolved_by) == (3, "resolved", "live loop")
    assert position.load(engine, "SPX500_USD", "M1") == T0 + 7 * BAR
    with engine.connect() as c:
        bars = c.execute(text("SELECT bars FROM live_positions")).scalar_one()
        realised = c.execute(
            text("SELECT COUNT(*) FROM predictions WHERE realised_pct IS NOT NULL")
        ).scalar_one()
    assert (bars, realised) == (8, 2)
