from __future__ import annotations

import importlib

import pytest

from spxcast.config import Settings
from spxcast.errors import PipelineError
from spxcast.pipeline.runner import run_dag, run_states
from spxcast.pipeline.spec import DAG, DAGS, Task

M = "pipeline_fixture_tasks"


def _dag(*tasks: Task) -> DAG:
    return DAG("test", tasks)


def _runs(settings: Settings, task: str) -> int:
    marker = settings.home / "markers" / task
    return int(marker.read_text()) if marker.exists() else 0


def test_cycle_and_unknown_callable_format_are_rejected() -> None:
    with pytest.raises(PipelineError, match="cycle"):
        _dag(Task("a", f"{M}:record", deps=("b",)), Task("b", f"{M}:record", deps=("a",)))
    with pytest.raises(PipelineError, match="module:function"):
        _dag(Task("a", "not_a_path"))
    with pytest.raises(PipelineError, match="twice"):
        _dag(Task("a", f"{M}:record"), Task("a", f"{M}:record"))


def test_declared_dags_are_acyclic_and_every_callable_imports() -> None:
    for dag in DAGS.values():
        assert dag.order()
        for task in dag.tasks:
            module, function = task.callable.split(":")
            assert callable(getattr(importlib.import_module(module), function)), task.callable


def test_training_dag_has_the_documented_shape() -> None:
    training = DAGS["training"]
    names = set(training.order())
    assert {"validate_market", "validate_news", "select_model", "register_model"} <= names
    assert {n for n in names if n.startswith("train_")} == {"train_lightgbm", "train_xgboost", "train_ar"}
    assert training.order().index("gold_labels") < training.order().index("train_ar")


def test_runs_in_order_and_records_state(settings: Settings) -> None:
    dag = _dag(
        Task("a", f"{M}:record"),
        Task("b", f"{M}:record", deps=("a",)),
        Task("c", f"{M}:record", deps=("a",)),
        Task("d", f"{M}:record", deps=("b", "c")),
    )
    summary = run_dag(settings, dag)
    assert summary.status == "succeeded"
    assert summary.tasks == dict.fromkeys("abcd", "succeeded")
    assert summary.outputs["d"] == {"task": "d", "runs": 1}
    [state] = run_states(settings, summary.run_id)
    assert state.status == "succeeded"
    assert {t.task: t.status for t in state.tasks} == dict.fromkeys("abcd", "succeeded")
    order = sorted(state.tasks, key=lambda t: t.started_at)
    assert order[0].task == "a" and order[-1].task == "d"


def test_failure_stops_downstream_and_resume_skips_succeeded(settings: Settings) -> None:
    dag = _dag(
        Task("a", f"{M}:record"),
        Task("b", f"{M}:fail_until_flag", deps=("a",), retries=0),
        Task("c", f"{M}:record", deps=("b",)),
        Task("side", f"{M}:record", deps=("a",)),
    )
    first = run_dag(settings, dag)
    assert first.status == "failed"
    assert first.tasks == {"a": "succeeded", "b": "failed", "c": "upstream_failed", "side": "succeeded"}
    assert "told to fail" in first.errors["b"]
    assert _runs(settings, "c") == 0

    (settings.home / "allow-b").write_text("")
    second = run_dag(settings, dag, resume=first.run_id)
    assert second.run_id == first.run_id
    assert second.status == "succeeded"
    assert _runs(settings, "a") == 1 and _runs(settings, "side") == 1, "succeeded tasks must not rerun"
    assert _runs(settings, "b") == 1 and _runs(settings, "c") == 1
    [state] = run_states(settings, first.run_id)
    assert {t.task: t.attempt for t in state.tasks}["b"] == 2


def test_retries_a_transient_failure(settings: Settings) -> None:
    summary = run_dag(settings, _dag(Task("a", f"{M}:flaky_once", retries=1)))
    assert summary.status == "succeeded"
    [state] = run_states(settings, summary.run_id)
    assert state.tasks[0].attempt == 2


def test_dead_worker_fails_its_task_and_others_finish(settings: Settings) -> None:
    dag = _dag(Task("dies", f"{M}:die", retries=0), Task("fine", f"{M}:record"))
    summary = run_dag(settings, dag)
    assert summary.tasks["dies"] == "failed"
    assert "died" in summary.errors["dies"]
    assert summary.status == "failed"


def test_resume_of_unknown_run_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(PipelineError, match="no pipeline run"):
        run_dag(settings, _dag(Task("a", f"{M}:record")), resume="nope")
