from __future__ import annotations

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
