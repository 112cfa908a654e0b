"""The Airflow DAG file generated from the pipeline spec: valid Python, every task, every dependency.

Airflow is not installed here (it lives in its own environment), so the file is executed against a
minimal recording stand-in of the three Airflow names it uses.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from spxcast.cli.main import app
from spxcast.pipeline.airflow import render_airflow_dag
from spxcast.pipeline.spec import DAGS, get_dag

REPO = Path(__file__).resolve().parents[2]


class _Recorder:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.edges: set[tuple[str, str]] = set()
        self.dag: dict[str, Any] = {}


def _execute(source: str, monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    recorder = _Recorder()

    class Operator:
        def __init__(self, task_id: str, **kwargs: Any) -> None:
            self.task_id = task_id
            recorder.tasks[task_id] = kwargs

        def __rshift__(self, other: Operator) -> Operator:
            recorder.edges.add((self.task_id, other.task_id))
            return other

    class Dag:
        def __init__(self, **kwargs: Any) -> None:
            recorder.dag = kwargs

        def __enter__(self) -> Dag:
            return self

        def __exit__(self, *args: object) -> None:
            return None

    airflow = types.ModuleType("airflow")
    airflow.DAG = Dag  # type: ignore[attr-defined]
    bash = types.ModuleType("airflow.providers.standard.operators.bash")
    bash.BashOperator = Operator  # type: ignore[attr-defined]
    pendulum = types.ModuleType("pendulum")
    pendulum.datetime = lambda *args, **kwargs: (args, kwargs)  # type: ignore[attr-defined]
    for name, module in {
        "airflow": airflow,
        "airflow.providers.standard.operators.bash": bash,
        "pendulum": pendulum,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    exec(compile(source, "spxcast_training.py", "exec"), {"__name__": "dagfile"})
    return recorder


@pytest.mark.parametrize("name", sorted(DAGS))
def test_generated_dag_has_every_task_and_dependency(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = get_dag(name)
    source = render_airflow_dag(dag, command="/opt/spxcast/bin/spxcast", default_retries=2, schedule="@daily")
    ast.parse(source)
    recorded = _execute(source, monkeypatch)
    assert recorded.dag["dag_id"] == f"spxcast_{name}"
    assert recorded.dag["schedule"] == "@daily"
    assert set(recorded.tasks) == {t.name for t in dag.tasks}
    expected_edges = {(dep, t.name) for t in dag.tasks for dep in dag.internal_deps(t.name)}
    assert recorded.edges == expected_edges
    for task in dag.tasks:
        spec = recorded.tasks[task.name]
        assert (
            spec["bash_command"]
            == f"/opt/spxcast/bin/spxcast pipeline task {task.name} --run-id '{{{{ run_id }}}}'"
        )
        assert spec["retries"] == (2 if task.retries is None else task.retries)


def test_committed_dag_file_is_generated_from_the_current_spec(tmp_path: Path) -> None:
    out = tmp_path / "dag.py"
    result = CliRunner().invoke(app, ["pipeline", "airflow", "--out", str(out)])
    assert result.exit_code == 0, result.output
    committed = REPO / "deploy" / "airflow" / "dags" / "spxcast_training.py"
    assert out.read_text() == committed.read_text(), (
        "deploy/airflow/dags/spxcast_training.py is stale: run `spxcast pipeline airflow`"
    )
    training = get_dag("training")
    assert all(f"task_id={t.name!r}" in out.read_text() for t in training.tasks)
