from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from spxcast.config import Settings
from spxcast.db import connect
from spxcast.pipeline.runner import run_dag, run_states
from spxcast.pipeline.spec import DAG, Task


def _check_schema(url: str) -> None:
    engine = connect(url)
    connect(url)  # migrating twice is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {"pipeline_runs", "task_runs", "alembic_version"} <= tables


def test_sqlite_app_database_migrates_in_wal_mode(settings: Settings) -> None:
    _check_schema(settings.db_url())
    engine = connect(settings.db_url())
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.integration
def test_postgresql_app_database(settings: Settings, postgres_url: str) -> None:
    _check_schema(postgres_url)
    on_postgres = settings.model_copy(update={"db": settings.db.model_copy(update={"url": postgres_url})})
    summary = run_dag(on_postgres, DAG("pg", (Task("a", "pipeline_fixture_tasks:record"),)))
    assert summary.status == "succeeded"
    [state] = run_states(on_postgres, summary.run_id)
    assert state.tasks[0].status == "succeeded"


def _migrate_concurrently(url: str, processes: int = 6) -> None:
    """Let ``processes`` interpreters migrate the fresh database ``url`` at the same moment (after import)."""
    src = str(Path(__file__).parents[2] / "src")
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from spxcast.db import connect; "
        "print('ready', flush=True); sys.stdin.readline(); connect(sys.argv[1])"
    )
    started = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, src],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for process in started:  # every one imported: release them together
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in started:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    tails = [process.communicate(timeout=120)[1][-2000:] for process in started]
    failed = [tail for process, tail in zip(started, tails, strict=True) if process.returncode != 0]
    assert not failed, failed
    tables = set(inspect(connect(url)).get_table_names())
    assert {"pipeline_runs", "task_runs", "alembic_version"} <= tables


def test_concurrent_first_migrations_on_sqlite(tmp_path: Path) -> None:
    """Replicas starting at once on a fresh SQLite file used to race to CREATE TABLE alembic_version."""
    _migrate_concurrently(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.mark.integration
def test_concurrent_first_migrations_on_postgresql(postgres_url: str) -> None:
    _migrate_concurrently(postgres_url)
