"""The routes the dashboard's Health, Skill and Live pages need, through FastAPI's TestClient on an API with
no model (none is needed): alert acknowledgement and resolution with the admin key, the promotion history
with gate results, and history rows that say why a bound is null.

Alerts, registry transitions, slot changes and logged predictions are written by the same library
functions that write them in production (monitoring's ``apply_plan``, the registry's audit ``record``, the
serving slots' ``record``, the prediction log's insert).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from serving_factories import client
from spxcast.config import Settings, load_settings
from spxcast.db import connect
from spxcast.monitoring import alerts as alert_rules
from spxcast.monitoring import service as monitoring
from spxcast.registry import audit
from spxcast.registry.store import model_name_of
from spxcast.serving import slots
from spxcast.serving.predlog import LogEntry, insert_ignoring_duplicates
from spxcast.serving.routers.history import NO_CALIBRATION

KEY = "dashboard-routes-admin-key"
ADMIN = {"X-Admin-Key": KEY, "X-Actor": "alice (dashboard)"}
SPX = "SPX500_USD"
T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)


def api_settings(tmp_path: Path, admin_key: str | None = KEY) -> Settings:
    overrides: dict[str, Any] = {
        "db.url": f"sqlite:///{tmp_path / 'app.db'}",
        "serving.spool_path": str(tmp_path / "spool.ndjson"),
        "serving.feature_refresh_s": 3600.0,
    }
    if admin_key is not None:
        overrides["serving.admin_key"] = admin_key
    return load_settings(home=tmp_path / "home", **overrides)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One API per module (starting one takes seconds); each test writes rows no other test reads."""
    return api_settings(tmp_path_factory.mktemp("routes"))


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def api(settings: Settings, engine: Engine) -> Iterator[Any]:
    with client(settings) as test_client:
        yield test_client


def open_alert(engine: Engine, subject: str = "bars") -> int:
    finding = alert_rules.Finding("bar_age", subject, 30.0, 10.0, True, "no bar for 30 trading minutes")
    plan = alert_rules.Plan([alert_rules.NewAlert(finding, "critical")], [], [], [])
    (alert_id,) = monitoring.apply_plan(engine, plan, "dashboard-routes-test", T0)
    return alert_id


def test_alerts_are_acknowledged_then_resolved_with_the_admin_key_and_the_actor_recorded(
    api: Any, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alert_id = open_alert(engine)
    assert api.post(f"/alerts/{alert_id}/ack").status_code == 401
    assert api.post(f"/alerts/{alert_id}/ack", headers={"X-Admin-Key": "wrong-key-123"}).status_code == 403
    assert monitoring.list_alerts(engine, "open")[0]["id"] == alert_id  # refused: nothing changed
    before = datetime.now(UTC)
    acked = api.post(f"/alerts/{alert_id}/ack", headers=ADMIN)
    assert acked.status_code == 200, acked.text
    alert = acked.json()
    assert alert["status"] == "acknowledged" and alert["acknowledged_by"] == "alice (dashboard)"
    assert before <= datetime.fromisoformat(alert["acknowledged_at"]).replace(tzinfo=UTC) <= datetime.now(UTC)
    again = api.post(f"/alerts/{alert_id}/ack", headers={**ADMIN, "X-Actor": "bob"})
    assert again.status_code == 409 and "already acknowledged (by alice (dashboard)" in again.json()["detail"]
    assert monitoring.list_alerts(engine)[0]["acknowledged_by"] == "alice (dashboard)"  # the first is kept
    resolved = api.post(f"/alerts/{alert_id}/resolve", headers={**ADMIN, "X-Actor": "bob"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert resolved.json()["resolved_by"] == "bob"
    for action in ("ack", "resolve"):
        closed = api.post(f"/alerts/{alert_id}/{action}", headers=ADMIN)
        assert closed.status_code == 409 and "already resolved (by bob at " in closed.json()["detail"]
    missing = api.post("/alerts/999/ack", headers=ADMIN)
    assert missing.status_code == 404 and "no alert with id 999" in missing.json()["detail"]
    assert api.post("/alerts/0/ack", headers=ADMIN).status_code == 422
    assert api.get("/alerts", params={"status": "resolved"}).json()[0]["id"] == alert_id
    assert KEY not in caplog.text and "wrong-key-123" not in caplog.text
    assert f"alert {alert_id} (bar_age:bars) acknowledged by alice (dashboard)" in caplog.text


def test_alert_routes_are_closed_when_no_admin_key_is_configured(tmp_path: Path) -> None:
    settings = api_settings(tmp_path, admin_key=None)
    engine = connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
    try:
        with client(settings) as api:
            alert_id = open_alert(engine)
            for action in ("ack", "resolve"):
                refused = api.post(f"/alerts/{alert_id}/{action}", headers=ADMIN)
                assert refused.status_code == 403 and "disabled" in refused.json()["detail"]
        assert monitoring.list_alerts(engine)[0]["status"] == "open"
    finally:
        engine.dispose()


def transition(
    engine: Engine, settings: Settings, version: int, action: str, minutes: int, **extra: Any
) -> None:
    fields: dict[str, Any] = {
        "model_name": model_name_of(settings),
        "version": version,
        "action": action,
        "from_state": "Staging",
        "to_state": "Production",
        "actor": "carol",
        "reason": f"{action} v{version}",
        "forced": False,
        "gates": None,
        "at": T0 + timedelta(minutes=minutes),
        **extra,
    }
    audit.record(engine, audit.Transition(**fields))


def test_model_history_lists_transitions_with_their_gates_and_slot_changes_newest_first(
    api: Any, settings: Settings, engine: Engine
) -> None:
    empty = api.get("/models/history").json()
    assert empty == {"model_name": model_name_of(settings), "transitions": [], "slot_changes": []}
    gates = [
        {"name": "beats_zero_test", "passed": True, "figure": "RMSE 0.1 vs zero 0.2"},
        {"name": "max_test_rmse", "passed": False, "figure": "test RMSE 0.1 (need <= 0.05)"},
    ]
    transition(engine, settings, 1, "register", 0, from_state="None", to_state="Staging")
    transition(engine, settings, 1, "promote", 5, gates=gates, forced=True, reason="on-call override")
    transition(engine, settings, 2, "promote", 9, gates=gates[:1])
    transition(engine, settings, 1, "rollback", 12, from_state="Archived")
    audit.record(  # another registered model (another horizon) is not this server's
        engine,
        audit.Transition("other-model", 7, "promote", "Staging", "Production", "x", "y", False, None, T0),
    )
    state = slots.SlotState().deployed(1, swap=True).deployed(2, swap=True)
    slots.record(engine, "dave", "deploy", "ship v2", state)
    slots.record(engine, "dave", "rollback", "v2 misbehaves", state.rolled_back())
    document = api.get("/models/history").json()
    steps = document["transitions"]
    assert [(t["version"], t["action"]) for t in steps] == [(1, "rollback"), (2, "promote"), (1, "promote"),
                                                             (1, "register")]  # fmt: skip
    forced = steps[2]
    assert forced["forced"] and forced["reason"] == "on-call override" and forced["actor"] == "carol"
    assert forced["gates"] == gates and steps[0]["gates"] is None
    assert datetime.fromisoformat(forced["at"]) == T0 + timedelta(minutes=5)
    changes = document["slot_changes"]
    assert [c["action"] for c in changes] == ["rollback", "deploy"]
    assert changes[1]["versions"][changes[1]["live"]] == 2 and changes[1]["reason"] == "ship v2"
    assert [t["action"] for t in api.get("/models/history", params={"limit": 1}).json()["transitions"]] == [
        "rollback"
    ]


def test_metrics_of_a_version_the_registry_does_not_have_is_404(api: Any) -> None:
    response = api.get("/models/3/metrics")
    assert response.status_code == 404 and "has no version 3" in response.json()["detail"]


def log_row(i: int, lower: float | None, upper: float | None) -> dict[str, Any]:
    return LogEntry(
        prediction_id=f"p{i}",
        created_at=T0 + timedelta(minutes=i),
        instrument=SPX,
        granularity="M1",
        horizon_minutes=30,
        bar_ts=T0 + timedelta(minutes=i),
        feature_as_of=T0 + timedelta(minutes=i + 1),
        model_name="m",
        model_version=1,
        slot="blue",
        role="served",
        predicted_pct=0.01,
        lower_pct=lower,
        upper_pct=upper,
        price=5000.0,
        names=("f",),
        values=np.array([0.5], np.float32),
    ).row()


def test_history_rows_say_why_a_bound_is_null_and_newest_gives_the_last_rows(
    api: Any, engine: Engine
) -> None:
    """Regression: rows came back with null bounds and no reason. Adaptive conformal inference serves an
    infinite bound after a run of misses (stored as such; JSON has no infinity), and a version without
    calibration serves none."""
    inf = math.inf
    insert_ignoring_duplicates(
        engine,
        [log_row(0, -0.1, 0.1), log_row(1, -inf, inf), log_row(2, -0.2, inf), log_row(3, None, None)],
    )
    rows = api.get("/predictions/history", params={"instrument": SPX}).json()["rows"]
    bounds = [(r["lower_pct"], r["upper_pct"]) for r in rows]
    assert bounds == [(-0.1, 0.1), (None, None), (-0.2, None), (None, None)]
    notes = [r["interval_note"] for r in rows]
    assert notes[0] is None
    assert notes[1].startswith("Lower and upper unbounded: after recent misses the adaptive conformal level")
    assert notes[2].startswith("Upper unbounded")
    assert notes[3] == NO_CALIBRATION
    newest = api.get("/predictions/history", params={"instrument": SPX, "limit": 2, "newest": True}).json()
    assert [r["prediction_id"] for r in newest["rows"]] == ["p2", "p3"]  # the last two, oldest first
    oldest = api.get("/predictions/history", params={"instrument": SPX, "limit": 2}).json()
    assert [r["prediction_id"] for r in oldest["rows"]] == ["p0", "p1"]
