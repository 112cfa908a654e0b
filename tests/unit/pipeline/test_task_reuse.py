"""``spxcast pipeline task`` (what Airflow runs) reuses an earlier result whose inputs are unchanged, as
``pipeline run`` does; ``--rerun`` executes anyway, and a changed input table executes again."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from typer.testing import CliRunner

from features_factory import random_candles
from spxcast.cli.main import app
from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.pipeline.runner import run_states, run_task


def _candles(n: int) -> pl.DataFrame:
    return random_candles(n, seed=2).with_columns(
        pl.lit("test").alias("source"), pl.lit(datetime(2024, 2, 1, tzinfo=UTC)).alias("ingested_at")
    )


def test_a_task_with_unchanged_inputs_is_reused_unless_rerun(settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    lake.write("bronze.candles", _candles(300))
    status, first = run_task(settings, "silver_returns", "airflow-1")
    assert status == "succeeded" and "reused_from" not in first

    status, second = run_task(settings, "silver_returns", "airflow-2")
    assert status == "succeeded" and second == {**first, "reused_from": "airflow-1"}
    [state] = run_states(settings, "airflow-2")
    assert [(t.task, t.status) for t in state.tasks] == [("silver_returns", "succeeded")]

    home = ["--home", str(settings.home)]
    result = CliRunner().invoke(app, [*home, "pipeline", "task", "silver_returns", "--run-id", "airflow-3"])
    assert result.exit_code == 0 and "reused (from airflow-1)" in result.output, result.output
    result = CliRunner().invoke(
        app, [*home, "pipeline", "task", "silver_returns", "--run-id", "airflow-4", "--rerun"]
    )
    assert result.exit_code == 0 and "silver_returns succeeded" in result.output, result.output

    lake.write("bronze.candles", _candles(400))  # more bars: the result no longer holds
    status, fifth = run_task(settings, "silver_returns", "airflow-5")
    assert status == "succeeded" and "reused_from" not in fifth and fifth["rows"] > first["rows"]
