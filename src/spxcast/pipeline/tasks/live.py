"""Task of the ``online`` DAG: supervision of the live loop of the configured series.

The loop's position comes from the app database (``live_positions``), the newest stored bar from
bronze.candles; :func:`spxcast.monitoring.liveness.judge` decides on the trading calendar. A lagging loop
(or none at all while the market is open) opens a ``live_lag`` alert through the monitoring alert rules
(dedup, cooldown, channels) and fails the task with the verdict as its message; a loop that caught up
resolves the alert. The task does not restart the loop: the loop lives in ``spxcast serve --live`` or
``spxcast live`` on the serving hosts, whose process manager restarts it (docs/operations.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from spxcast.config import Settings
from spxcast.db import connect
from spxcast.db.models import LivePosition
from spxcast.errors import SpxcastError
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES
from spxcast.monitoring import alerts, liveness, notify
from spxcast.monitoring.service import apply_plan, known_alerts, record_notified
from spxcast.pipeline.context import TaskContext
from spxcast.timeutil import bar_length


class LiveLoopLagging(SpxcastError):
    """The live loop of a series is behind the trading calendar, or not running while the market is open."""


def read_record(engine: Engine, lake: Lake, instrument: str, granularity: str) -> liveness.LoopRecord:
    """The loop's position (app database) and the bronze bars after it (lake) for one series."""
    with engine.connect() as connection:
        row = connection.execute(
            select(LivePosition.bar_ts, LivePosition.updated_at).where(
                LivePosition.instrument == instrument, LivePosition.granularity == granularity
            )
        ).one_or_none()
    position, moved_at = (None, None) if row is None else (_utc(row[0]), _utc(row[1]))
    newest, after = None, 0
    if lake.exists(CANDLES.name):
        bars = lake.series(CANDLES.name, instrument, granularity).select("ts")
        counted = bars.select(
            pl.col("ts").max().alias("newest"),
            (pl.col("ts") > position).sum().alias("after") if position else pl.len().alias("after"),
        ).collect()
        newest, after = counted["newest"][0], int(counted["after"][0] or 0)
    return liveness.LoopRecord(instrument, granularity, position, moved_at, newest, after)


def supervise(settings: Settings, run_id: str, now: datetime, engine: Engine, lake: Lake) -> liveness.Verdict:
    """Judge the configured series' loop, apply the ``live_lag`` alert rule and notify new alerts."""
    rules = settings.monitoring.rules
    record = read_record(engine, lake, settings.instrument, settings.granularity)
    verdict = liveness.judge(
        record,
        now,
        bar_length(settings.granularity),
        calendar=settings.calendar,
        threshold=alerts.threshold_for(rules, liveness.CHECK, liveness.DEFAULT_THRESHOLD_BARS),
    )
    finding = verdict.finding()
    plan = alerts.plan([] if finding is None else [finding], known_alerts(engine, now), rules, now)
    opened = apply_plan(engine, plan, run_id, now)
    if plan.open:
        record_notified(
            engine, opened, notify.notify(settings.monitoring, notify.compose(plan.open, run_id, None))
        )
    return verdict


def supervise_live(ctx: TaskContext) -> dict[str, Any]:
    """Whether the live loop of the configured series is alive and keeping up; fails when it is not."""
    settings = ctx.settings
    engine = connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
    verdict = supervise(settings, ctx.run_id, _now(), engine, ctx.lake)
    if verdict.alarm:
        raise LiveLoopLagging(verdict.message)
    record = verdict.record
    return {
        "series": verdict.subject,
        "status": verdict.status,
        "lag_bars": verdict.lag_bars,
        "position": None if record.position is None else record.position.isoformat(),
        "newest_stored": None if record.newest_stored is None else record.newest_stored.isoformat(),
        "message": verdict.message,
    }


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
