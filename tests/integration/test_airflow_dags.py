"""The committed Airflow DAG files under real Airflow 3, against a small embedded spxcast home.

Airflow lives in its own virtual environment (`make airflow-venv`, or $AIRFLOW_VENV). With a SQLite metadata
database in a temporary AIRFLOW_HOME, the test checks that deploy/airflow/dags/ imports without errors, then
runs `airflow dags test` for every generated DAG in the spec's order (a later DAG reads what an earlier one
wrote: training starts from the bronze tables ingest fills). Each task runs `$SPXCAST_BIN pipeline task NAME
--run-id <Airflow's run id>` with this test's spxcast; spxcast's own records must then show every task of the
DAG succeeded under that run id. Without the environment the test skips, unless SPXCAST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services import services_required
from spxcast.config import load_settings
from spxcast.pipeline.airflow import airflow_dags, dag_file_name
from spxcast.pipeline.runner import run_states

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "deploy" / "airflow" / "dags"
# A week of synthetic minutes and one Optuna trial per stage: enough rows for every split, a short run.
TINY = {
    "SPXCAST_MARKET__SYNTHETIC__DAYS": "7",
    "SPXCAST_TRAINING__TRIALS_COARSE": "1",
    "SPXCAST_TRAINING__TRIALS_FINE": "1",
    "SPXCAST_TRAINING__MAX_ROUNDS": "20",
    "SPXCAST_TRAINING__OOT2_ROWS": "300",
}


def _airflow() -> Path:
    venv = Path(os.environ.get("AIRFLOW_VENV", REPO / ".venv-airflow"))
    airflow = venv / "bin" / "airflow"
    if not airflow.is_file():
        message = f"no Airflow environment at {venv} (create it with `make airflow-venv`)"
        if services_required():
            pytest.fail(f"{message}; SPXCAST_REQUIRE_SERVICES=1 requires it")
        pytest.skip(f"{message}; set SPXCAST_REQUIRE_SERVICES=1 to make this a failure")
    return airflow


def _environment(tmp_path: Path) -> dict[str, str]:
    spxcast = Path(sys.executable).with_name("spxcast")
    assert spxcast.is_file(), f"the tests' environment has no spxcast executable at {spxcast}"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SPXCAST_", "AIRFLOW"))}
    return {
        **inherited,
        **TINY,
        "SPXCAST_HOME": str(tmp_path / "spxcast-home"),
        "SPXCAST_BIN": str(spxcast),
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # A failing task is retried (retries=1 in the files) after one second, not Airflow's five minutes.
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    }


def _airflow_run(airflow: Path, args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(airflow), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=400, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`airflow {' '.join(args)}` exited {done.returncode}:\n{output[-6000:]}"
    return output


def test_every_generated_dag_runs_under_real_airflow(tmp_path: Path) -> None:
    airflow = _airflow()
    env = _environment(tmp_path)
    _airflow_run(airflow, ["db", "migrate"], env, tmp_path)
    errors = _airflow_run(airflow, ["dags", "list-import-errors", "--local", "-o", "json"], env, tmp_path)
    assert json.loads(errors[errors.rindex("[") :]) == [], f"the DAG folder has import errors:\n{errors}"

    settings = load_settings(home=tmp_path / "spxcast-home")
    dags = airflow_dags()
    assert {d.name for d in dags} >= {"ingest", "training"}
    for dag in dags:
        dag_id = dag_file_name(dag).removesuffix(".py")
        _airflow_run(airflow, ["dags", "test", dag_id], env, tmp_path)
        newest = run_states(settings, limit=1)[0]
        assert newest.run_id.startswith("manual__"), f"{dag_id}: tasks did not run under Airflow's run id"
        statuses = {t.task: t.status for t in newest.tasks}
        assert statuses == dict.fromkeys((t.name for t in dag.tasks), "succeeded"), f"{dag_id}: {statuses}"
