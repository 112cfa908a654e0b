"""The online DAG's ``supervise_live`` task on a real home: the loop's position in the app database against
bronze.candles and the clock; a lag opens one ``live_lag`` alert and fails the task; catching up resolves
it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from live_factories import store_flat_bars
from spxcast.cli.main import app
from spxcast.config import Settings
from spxcast.db import connect
from spxcast.lake import Lake
from spxcast.monitoring.service import list_alerts
from spxcast.pipeline.spec import get_dag
from spxcast.serving.live import position

NOW = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # a Wednesday: the CFD session is open
SATURDAY = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
FIRST = NOW - timedelta(minutes=30)


def _store_bars(settings: Settings, count: int) -> None:
    store_flat_bars(
        Lake.from_settings(settings),
        FIRST,
        count,
        now=NOW,
        source="live",
        volume=10,
        instrument=settings.instrument,
        granularity=settings.granularity,
    )


def _move_position(settings: Settings, bar_ts: datetime) -> None:
    engine = connect(settings.db_url())
    step = position.Step(settings.instrument, settings.granularity, 30, position=bar_ts, bars=1)
    position.commit(engine, step, NOW)


def _supervise(settings: Settings, monkeypatch: pytest.MonkeyPatch, at: datetime) -> tuple[int, str]:
    monkeypatch.setattr("spxcast.pipeline.tasks.live._now", lambda: at)
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["--home", str(settings.home), "pipeline", "task", "supervise_live"])
    return result.exit_code, " ".join(result.output.split())


def test_the_online_dag_materialises_and_supervises() -> None:
    dag = get_dag("online")
    assert {t.name for t in dag.tasks} == {"materialize", "supervise_live"}
    assert dag.task("supervise_live").retries == 0 and not dag.task("supervise_live").reusable
    assert "supervise_live" not in get_dag("training") and "supervise_live" not in get_dag("full")


def test_a_lagging_loop_opens_one_alert_and_fails_until_it_catches_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _store_bars(settings, 30)  # 13:30 .. 13:59
    _move_position(settings, FIRST + timedelta(minutes=9))  # the loop stopped at the 13:39 bar

    code, output = _supervise(settings, monkeypatch, NOW)
    assert code == 1, output
    assert (
        "task supervise_live failed: LiveLoopLagging: live loop of SPX500_USD M1 is 20 bars behind" in output
    )
    assert "bronze.candles holds 20 newer bars - the loop is down or stuck" in output
    assert "Traceback" not in output
    engine = connect(settings.db_url())
    [alert] = list_alerts(engine, "open")
    assert (alert["check"], alert["subject"], alert["severity"]) == ("live_lag", "SPX500_USD:M1", "critical")
    assert alert["value"] == 20.0 and alert["threshold"] == 5.0

    code, output = _supervise(settings, monkeypatch, NOW + timedelta(minutes=1))
    assert code == 1
    [still] = list_alerts(engine, "open")
    assert still["id"] == alert["id"] and still["count"] == 2, "the same condition is one alert"

    _move_position(settings, FIRST + timedelta(minutes=29))  # restarted: it caught up to the 13:59 bar
    code, output = _supervise(settings, monkeypatch, NOW + timedelta(minutes=1))
    assert code == 0, output
    assert "supervise_live succeeded" in output and "keeping_up" in output
    assert list_alerts(engine, "open") == []
    assert [a["resolved_by"] for a in list_alerts(engine, "resolved")] == ["monitoring"]


def test_the_rule_threshold_and_a_closed_market(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _store_bars(settings, 30)
    _move_position(settings, FIRST + timedelta(minutes=9))
    monkeypatch.setenv("SPXCAST_MONITORING__RULES", '[{"check": "live_lag", "threshold": 30}]')
    code, output = _supervise(settings, monkeypatch, NOW)
    assert code == 0 and "keeping_up" in output, output
    monkeypatch.delenv("SPXCAST_MONITORING__RULES")

    code, output = _supervise(settings, monkeypatch, SATURDAY)
    assert code == 0 and "market_closed" in output, output
    assert list_alerts(connect(settings.db_url())) == []


def test_a_loop_that_never_started_fails_while_the_market_is_open(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_bars(settings, 5)
    code, output = _supervise(settings, monkeypatch, NOW)
    assert code == 1
    assert "no live loop has recorded a position for SPX500_USD M1 while the market is open" in output
    [alert] = list_alerts(connect(settings.db_url()), "open")
    assert alert["value"] is None  # an infinite lag is stored as no value
