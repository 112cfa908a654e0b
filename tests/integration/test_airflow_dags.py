"""The committed Airflow DAG files under real Airflow 3, against a small embedded spxcast home.

Airflow lives in its own virtual environment (`make airflow-venv`, or $AIRFLOW_VENV). With a SQLite metadata
database in a temporary AIRFLOW_HOME, the test checks that deploy/airflow/dags/ imports without errors, then
runs `airflow dags test` for every generated DAG in the spec's order (a later DAG reads what an earlier one
wrote: training starts from the bronze tables ingest fills). Each task runs `$SPXCAST_BIN pipeline task NAME
--run-id <Airflow's run id>` with this test's spxcast; spxcast's own records must then show every task of the
DAG succeeded under that run id. The ``online`` DAG supervises a live loop: none runs here, so the test
records the loop's position as a loop keeping up would, then an hour behind, and checks that the supervision
task fails with the verdict and opens a ``live_lag`` alert (on an always-open calendar, so that the verdicts
do not depend on the hour). Without the environment the test skips, unless SPXCAST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services import unavailable
from spxcast.config import Settings, load_settings
from spxcast.db import connect
from spxcast.monitoring.service import list_alerts
from spxcast.pipeline.airflow import airflow_dags, dag_file_name
from spxcast.pipeline.runner import run_states
from spxcast.serving.live import position

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
        unavailable(f"no Airflow environment at {venv} (create it with `make airflow-venv`)")
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


def _airflow_run(airflow: Path, args: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> str:
    done = subprocess.run(
        [str(airflow), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=400, check=False
    )
    output = done.stdout + done.stderr
    if check:
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
    assert {d.name for d in dags} >= {"ingest", "training", "monitoring", "online"}
    for dag in dags:
        dag_id = dag_file_name(dag).removesuffix(".py")
        if dag.name == "online":
            # A loop keeping up, stamped 10 bars ahead so that Airflow's start on a loaded machine cannot
            # make it lag before the task runs.
            _loop_at(settings, _newest_closed_bar() + timedelta(minutes=10))
        _airflow_run(airflow, ["dags", "test", dag_id], _always_open(env, dag.name), tmp_path)
        newest = run_states(settings, limit=1)[0]
        assert newest.run_id.startswith("manual__"), f"{dag_id}: tasks did not run under Airflow's run id"
        statuses = {t.task: t.status for t in newest.tasks}
        assert statuses == dict.fromkeys((t.name for t in dag.tasks), "succeeded"), f"{dag_id}: {statuses}"

    # A loop an hour behind while the market is open: the supervision task fails under Airflow with the
    # verdict as its error, and a live_lag alert is open in the app database.
    _loop_at(settings, _newest_closed_bar() - timedelta(hours=1))
    _airflow_run(
        airflow, ["dags", "test", "spxcast_online"], _always_open(env, "online"), tmp_path, check=False
    )
    [supervision] = [t for t in run_states(settings, limit=1)[0].tasks if t.task == "supervise_live"]
    assert supervision.status == "failed"
    assert "LiveLoopLagging: live loop of SPX500_USD M1 is" in (supervision.error or "")
    engine = connect(settings.db_url())
    assert [a["check"] for a in list_alerts(engine, "open") if a["check"] == "live_lag"] == ["live_lag"]


def _always_open(env: dict[str, str], dag: str) -> dict[str, str]:
    """The online DAG judges the loop on an always-open calendar (exchange_calendars' 24/7), so that the
    verdicts do not depend on the hour the test runs at (the CFD session is closed at weekends)."""
    return {**env, "SPXCAST_CALENDAR": "24/7"} if dag == "online" else env


def _newest_closed_bar() -> datetime:
    """Start of the newest M1 bar closed by now."""
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def _loop_at(settings: Settings, bar_ts: datetime) -> None:
    """Record the live loop's position as the loop does (no loop runs in this test)."""
    engine = connect(settings.db_url())
    step = position.Step(settings.instrument, settings.granularity, settings.horizon_minutes, position=bar_ts)
    position.commit(engine, step, datetime.now(UTC))
