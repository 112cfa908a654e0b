"""A monitoring run end to end over a written prediction log: decay after a planted regime change, drift,
alerts in the table, an email with the report and a webhook on loopback, cooldown, the retrain policy.

The live loop (issue 12) is not there yet: the prediction rows are written with the serving prediction log's
own insert (``serving.predlog``), realised returns attached as serving's ``attach_realised`` does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import SecretStr
from scipy.signal import lfilter
from sqlalchemy import Engine

from monitoring_support import smtp_server, webhook_receiver
from spxcast.config import Settings
from spxcast.db.engine import connect
from spxcast.monitoring import service
from spxcast.monitoring.checks import PREDICTION
from spxcast.serving.predlog import LogEntry, insert_ignoring_duplicates

FEATURES = tuple(f"f{i}" for i in range(6))
H = 30
PASSWORD = "smtp-secret-77c1d2e3"
NOW = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # a Friday afternoon, in session


def ar1(rng: np.random.Generator, n: int, k: int, phi: float) -> np.ndarray:
    noise = rng.normal(size=(n + 200, k)) * np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], noise, axis=0)[200:]


def champion(rng: np.random.Generator) -> service.ChampionReference:
    values = ar1(rng, 8000, len(FEATURES), 0.3)
    frame = pl.DataFrame(values, schema=list(FEATURES))
    frame = frame.with_columns(pl.Series(PREDICTION, 0.05 * values[:, 0]))
    return service.ChampionReference("spx-test", 3, FEATURES, frame, test_rmse=0.1)


def write_log(
    engine: Engine,
    rng: np.random.Generator,
    switch_at: int,
    n: int,
    versions: tuple[int, int] = (3, 4),
) -> None:
    """``n`` served bars ending 30 minutes before NOW; the model's signal stops working at ``switch_at``;
    features f0, f1 shift by one standard deviation over the last 240 bars. Shadow rows on every bar;
    ``versions``: (served, shadow) model versions."""
    start = NOW - timedelta(minutes=n + H)
    values = ar1(rng, n, len(FEATURES), 0.3)
    values[-240:, :2] += 1.0
    signal = 0.1 * rng.normal(size=n)
    noise = 0.1 * rng.normal(size=n)
    realised = np.where(np.arange(n) < switch_at, signal + noise, noise)
    rows = []
    for i in range(n):
        bar = start + timedelta(minutes=i)
        for role, predicted in (("served", signal[i]), ("shadow", 0.0)):
            entry = LogEntry(
                prediction_id=f"{role}-{i}",
                created_at=bar + timedelta(minutes=1),
                instrument="SPX500_USD",
                granularity="M1",
                horizon_minutes=H,
                bar_ts=bar,
                feature_as_of=bar + timedelta(minutes=1),
                model_name="spx-test",
                model_version=versions[0] if role == "served" else versions[1],
                slot="blue" if role == "served" else "green",
                role=role,
                predicted_pct=float(predicted),
                lower_pct=None,
                upper_pct=None,
                price=None,
                names=FEATURES,
                values=values[i],
            )
            # the outcome as serving's attach_realised records it once the horizon has passed
            rows.append(
                entry.row()
                | {"realised_pct": float(realised[i]), "realised_at": bar + timedelta(minutes=H + 1)}
            )
    insert_ignoring_duplicates(engine, rows)


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return connect(settings.db_url())


def test_run_raises_decay_and_drift_alerts_sends_them_once_and_retrains(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    write_log(engine, rng, switch_at=1000, n=3000)
    reference = champion(np.random.default_rng(4))
    calls: list[Any] = []

    with smtp_server(PASSWORD) as (inbox, smtp_port), webhook_receiver() as (received, hook_port):
        monitored = settings.model_copy(
            update={
                "monitoring": settings.monitoring.model_copy(
                    update={
                        "smtp_host": "127.0.0.1",
                        "smtp_port": smtp_port,
                        "smtp_user": "alerts",
                        "smtp_password": SecretStr(PASSWORD),
                        "email_to": ["oncall@example.org"],
                        "webhook_url": SecretStr(f"http://127.0.0.1:{hook_port}/hook"),
                        "retrain_policy": "automatic",
                    }
                )
            }
        )

        def run(at: datetime, report: bool = True) -> dict[str, Any]:
            return service.run_monitoring(
                monitored,
                now=at,
                report=report,
                champion_loader=lambda _: reference,
                engine=engine,
                trainer=lambda s, why: calls.append((s, why)) or {"status": "trained"},
            )

        first = run(NOW)
        opened = set(first["alerts_opened"])
        assert {"decay:model", "drift:f0", "drift:f1", "bar_age:bars"} <= opened
        assert not any(key.startswith("drift:f") and key not in ("drift:f0", "drift:f1") for key in opened)
        assert first["decay"]["decayed"] and first["decay"]["p_value"] < 0.01
        assert first["channels"] == {"email": "sent", "webhook": "sent"}
        assert first["retrain"]["action"] == "train" and len(calls) == 1
        (message,) = inbox.messages
        assert any(p.get_filename() == "report.html" for p in message.walk())
        assert Path(first["report"]).stat().st_size > 10_000
        ((_, payload),) = received
        assert {a["key"] for a in payload["alerts"]} == opened

        second = run(NOW + timedelta(minutes=30), report=False)  # same conditions: nothing new sent
        assert second["alerts_opened"] == [] and second["alerts_open_refreshed"] >= len(opened)
        assert len(inbox.messages) == 1 and len(received) == 1 and len(calls) == 1

    rows = service.list_alerts(engine, "open")
    decay = next(r for r in rows if r["key"] == "decay:model")
    assert decay["count"] == 2 and json.loads(decay["notified"]) == {"email": "sent", "webhook": "sent"}
    acked = service.set_status(engine, decay["id"], "acknowledged", "oncall", NOW)
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "oncall"
    assert service.latest(monitored)["run_id"] == second["run_id"]
    daily = pl.read_csv(Path(first["report"]).parent / "skill_daily.csv")
    assert daily.height >= 2 and "rmse_lo" in daily.columns


def test_promotion_only_when_the_shadow_beats_the_champion_on_enough_live_rows(
    settings: Settings, engine: Engine
) -> None:
    # After the switch the champion's signal is noise: the shadow (zero forecast) beats it on the same bars.
    write_log(engine, np.random.default_rng(9), switch_at=500, n=3000)
    decision, paired, health = service.promotion_check(settings, engine, NOW)
    assert paired.rows == 3000 and paired.p_value < 0.05 and paired.challenger_rmse < paired.champion_rmse
    assert health == {"p99_latency_ms": 0.0, "error_rate": 0.0}
    assert decision.promote, decision.reasons
    strict = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"promote_min_rows": 5000})}
    )
    refused, _, _ = service.promotion_check(strict, engine, NOW)
    assert not refused.promote and "3000 paired live rows" in refused.reasons[0]
    forced, _, _ = service.promotion_check(strict, engine, NOW, force=True, reason="on-call decision")
    assert forced.promote and forced.forced


def test_cli_alerts_ack_resolve_and_report(settings: Settings, engine: Engine) -> None:
    from typer.testing import CliRunner

    from spxcast.cli.main import app
    from spxcast.monitoring import alerts

    finding = alerts.Finding("bar_age", "bars", 30.0, 10.0, True, "no bar for 30 trading minutes")
    plan = alerts.Plan([alerts.NewAlert(finding, "critical")], [], [], [])
    (alert_id,) = service.apply_plan(engine, plan, "monitor-test", NOW)
    cli = CliRunner()
    home = ["--home", str(settings.home)]
    listed = cli.invoke(app, [*home, "monitor", "alerts", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["key"] == "bar_age:bars"
    acked = cli.invoke(app, [*home, "monitor", "alerts", "ack", str(alert_id), "--by", "oncall"])
    assert acked.exit_code == 0 and "acknowledged" in acked.output
    resolved = cli.invoke(app, [*home, "monitor", "alerts", "resolve", str(alert_id)])
    assert resolved.exit_code == 0 and "resolved" in resolved.output
    again = cli.invoke(app, [*home, "monitor", "alerts", "resolve", str(alert_id)])
    assert again.exit_code == 1 and "already resolved" in again.output
    missing = cli.invoke(app, [*home, "monitor", "alerts", "ack", "999"])
    assert missing.exit_code == 1 and "no alert with id 999" in missing.output
    report = cli.invoke(app, [*home, "monitor", "report"])
    assert report.exit_code == 1 and "no monitoring run yet" in report.output


def test_monitoring_dag_without_champion_checks_freshness(settings: Settings, engine: Engine) -> None:
    from spxcast.pipeline.runner import run_dag

    summary = run_dag(settings, "monitoring")
    assert summary.status == "succeeded"
    latest = service.latest(settings)
    assert latest is not None and latest["champion"] is None
    assert {"bar_age:bars", "article_age:news"} <= set(latest["alerts_opened"])
    assert [r["key"] for r in service.list_alerts(engine, "open")] == ["article_age:news", "bar_age:bars"]


def test_api_serves_the_latest_run_its_report_and_the_alerts(settings: Settings, engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from spxcast.serving import create_app

    with TestClient(create_app(settings)) as api:
        assert api.get("/monitoring/latest").status_code == 404
        assert api.get("/alerts").json() == []
        summary = service.run_monitoring(settings, now=NOW, send=False)  # no champion: freshness only
        latest = api.get("/monitoring/latest").json()
        assert latest["run_id"] == summary["run_id"] and latest["report_url"] is None
        assert api.get("/monitoring/report").status_code == 404
        keys = [a["key"] for a in api.get("/alerts", params={"status": "open"}).json()]
        assert keys == ["article_age:news", "bar_age:bars"]
        assert api.get("/alerts", params={"status": "bogus"}).status_code == 422
