"""The Airflow DAG files generated from the pipeline spec: one per DAG, every task and dependency, schedules
from the settings, and the committed files in deploy/airflow/dags/ equal to what the generator writes now.

These run without Airflow (it lives in its own environment): a file is executed against a minimal recording
stand-in of the three names it imports. tests/integration/test_airflow_dags.py runs the committed files under
real Airflow 3.
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
from spxcast.config import PipelineSettings, load_settings
from spxcast.errors import PipelineError
from spxcast.pipeline.airflow import (
    airflow_dags,
    dag_file_name,
    render_airflow_dag,
    render_airflow_dags,
    write_airflow_dags,
)
from spxcast.pipeline.spec import DAGS, get_dag

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "deploy" / "airflow" / "dags"


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
    ast.parse(source)
    exec(compile(source, "dagfile.py", "exec"), {"__name__": "dagfile"})
    return recorder


@pytest.mark.parametrize("name", [dag.name for dag in airflow_dags()])
def test_generated_dag_has_every_task_and_dependency(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = get_dag(name)
    source = render_airflow_dag(dag, command="/opt/spxcast/bin/spxcast", default_retries=2, schedule="@daily")
    recorded = _execute(source, monkeypatch)
    assert recorded.dag["dag_id"] == f"spxcast_{name}" == dag_file_name(dag).removesuffix(".py")
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


def test_every_dag_but_the_local_only_ones_gets_a_file_and_the_files_name_no_machine_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = render_airflow_dags(PipelineSettings())
    expected = {f"spxcast_{name}.py" for name, dag in DAGS.items() if not dag.local_only}
    assert set(files) == expected
    assert {"spxcast_ingest.py", "spxcast_training.py"} <= set(files)
    assert "spxcast_full.py" not in files, "`full` chains ingest and training for the local runner only"
    for source in files.values():
        for spec in _execute(source, monkeypatch).tasks.values():
            assert spec["bash_command"].startswith('"${SPXCAST_BIN:-spxcast}" pipeline task ')


def test_schedules_come_from_the_settings_over_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = render_airflow_dags(PipelineSettings())
    assert _execute(defaults["spxcast_training.py"], monkeypatch).dag["schedule"] == "@daily"
    assert _execute(defaults["spxcast_ingest.py"], monkeypatch).dag["schedule"] == "*/15 * * * *"

    monkeypatch.setenv("SPXCAST_PIPELINE__SCHEDULES__TRAINING", "0 6 * * 1-5")
    configured = render_airflow_dags(load_settings().pipeline)
    assert _execute(configured["spxcast_training.py"], monkeypatch).dag["schedule"] == "0 6 * * 1-5"
    assert _execute(configured["spxcast_ingest.py"], monkeypatch).dag["schedule"] == "*/15 * * * *"

    manual = render_airflow_dags(PipelineSettings(schedules={"ingest": ""}))
    assert _execute(manual["spxcast_ingest.py"], monkeypatch).dag["schedule"] is None


def test_a_schedule_for_a_dag_without_an_airflow_file_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"pipeline.schedules names full, trainng.*schedulable DAGs"):
        render_airflow_dags(PipelineSettings(schedules={"trainng": "@daily", "full": "@daily"}))


def test_committed_dag_files_are_generated_from_the_current_spec(tmp_path: Path) -> None:
    out = tmp_path / "dags"
    result = CliRunner().invoke(app, ["pipeline", "airflow", "--out", str(out)])
    assert result.exit_code == 0, result.output
    generated = {p.name: p.read_text() for p in out.glob("*.py")}
    committed = {p.name: p.read_text() for p in COMMITTED.glob("*.py")}
    stale = sorted(n for n in generated.keys() | committed.keys() if generated.get(n) != committed.get(n))
    assert not stale, f"deploy/airflow/dags/ is stale ({', '.join(stale)}): run `spxcast pipeline airflow`"


def test_writing_removes_the_files_of_dags_gone_from_the_spec_and_keeps_hand_written_ones(
    tmp_path: Path,
) -> None:
    files = render_airflow_dags(PipelineSettings())
    gone = render_airflow_dag(get_dag("training")).replace("spxcast_training", "spxcast_retired")
    (tmp_path / "spxcast_retired.py").write_text(gone)
    (tmp_path / "spxcast_custom.py").write_text("# written by hand\n")
    removed = write_airflow_dags(tmp_path, files)
    assert removed == [tmp_path / "spxcast_retired.py"]
    assert sorted(p.name for p in tmp_path.glob("*.py")) == sorted([*files, "spxcast_custom.py"])
    assert all((tmp_path / name).read_text() == source for name, source in files.items())
