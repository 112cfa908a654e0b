"""The retrain loop's plumbing: a training run started by the monitoring task is a child run of the
monitoring DAG's run under its hold on the home (real runner processes), and a deploy the loop cannot make
itself is recorded as awaiting deploy with the commands a person runs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from spxcast.config import Settings
from spxcast.db import PipelineRun, connect
from spxcast.monitoring import retrain, service
from spxcast.pipeline.runner import run_dag
from spxcast.pipeline.spec import DAG, Task

PARENT = DAG("parent", (Task("spawn", "monitoring_support:spawn_child", retries=0),))


def test_a_task_starts_a_child_run_under_its_runs_hold_on_the_home(settings: Settings) -> None:
    summary = run_dag(settings, PARENT, workers=1)
    assert summary.status == "succeeded", summary.errors
    child = summary.outputs["spawn"]["child_run"]
    assert summary.outputs["spawn"]["child_status"] == "succeeded"
    assert (settings.home / "markers" / "recorded").read_text() == "1"
    with Session(connect(settings.db_url())) as session:
        runs = {r.id: (r.dag, r.status) for r in session.scalars(select(PipelineRun)).all()}
    assert runs[child] == ("child", "succeeded") and runs[summary.run_id] == ("parent", "succeeded")


def test_a_child_naming_another_parent_is_refused_while_the_home_is_held(settings: Settings) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "child-parent").write_text("training-20260101T000000-abcdef")
    summary = run_dag(settings, PARENT, workers=1)
    assert summary.status == "failed"
    assert "another pipeline run is in progress" in summary.errors["spawn"]
    assert f"run {summary.run_id}" in summary.errors["spawn"], "the refusal names the holder"
    assert not (settings.home / "markers" / "recorded").exists()


def test_without_serving_url_or_admin_key_a_deploy_awaits_a_person(settings: Settings) -> None:
    awaiting = service.deploy_to_serving(settings, 7, "shadow challenger: monitoring run x", swap=False)
    assert awaiting["status"] == "awaiting deploy" and awaiting["why"] == "no monitoring.serving_url"
    assert awaiting["commands"] == retrain.deploy_commands(
        7, "shadow challenger: monitoring run x", swap=False
    )
    assert (
        awaiting["commands"][0]
        == "spxcast serve deploy 7 --no-swap --reason 'shadow challenger: monitoring run x'"
    )
    assert awaiting["commands"][1].startswith("spxcast serve shadow on --reason")
    with_url = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"serving_url": "http://127.0.0.1:9"})}
    )
    keyless = service.deploy_to_serving(with_url, 7, "promoted", swap=True)
    assert keyless["why"] == "no serving.admin_key" and keyless["commands"] == [
        "spxcast serve deploy 7 --reason promoted --url http://127.0.0.1:9"
    ]


def test_retrain_policy_opens_once_and_retries_only_a_retrain_that_reached_no_shadow() -> None:
    from datetime import UTC, datetime, timedelta

    from spxcast.monitoring.alerts import Finding, NewAlert

    decay = Finding("decay", "model", 1.6, 1.2, True, "decayed")
    drift_one = Finding("drift", "f0", 0.4, 0.1, True, "one feature")
    now = datetime(2026, 3, 6, 15, tzinfo=UTC)
    opened = [NewAlert(decay, "critical"), NewAlert(drift_one, "info")]
    assert retrain.retrain_action("off", opened) == ("none", ["decay:model"])
    assert retrain.retrain_action("suggest", opened) == ("suggest", ["decay:model"])
    assert retrain.retrain_action("automatic", opened) == ("train", ["decay:model"])
    assert retrain.retrain_action("automatic", [NewAlert(drift_one, "info")]) == ("none", [])
    failed = retrain.LastRetrain(now - timedelta(hours=25), reached_shadow=False)
    retry = retrain.retrain_action("automatic", [], [decay], failed, now, 1440)
    assert retry == ("train", ["decay:model (still open; retry)"])
    too_soon = retrain.LastRetrain(now - timedelta(hours=23), reached_shadow=False)
    assert retrain.retrain_action("automatic", [], [decay], too_soon, now, 1440) == ("none", [])
    assert retrain.retrain_action("automatic", opened, [], too_soon, now, 1440) == ("none", []), (
        "rate-limited"
    )
    shadowed = retrain.LastRetrain(now - timedelta(hours=9), reached_shadow=True)
    assert retrain.retrain_action("automatic", opened, [], shadowed, now, 1440) == ("none", []), "in shadow"
    assert retrain.retrain_action("automatic", [], [decay], shadowed, now, 60) == ("none", [])
    assert retrain.retrain_action("automatic", opened, [], shadowed, now, 60) == ("train", ["decay:model"])
    assert retrain.retrain_action("suggest", [], [decay], failed, now, 1440) == ("none", [])
    assert retrain.retrain_action("automatic", [], [drift_one], failed, now, 1440) == ("none", [])
