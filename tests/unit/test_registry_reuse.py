"""The runner reuses a task result only when nothing it read or wrote changed, and config and code match."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_reuse_tasks import candles

from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.pipeline.runner import run_dag
from spxcast.pipeline.spec import DAG, Task

M = "registry_reuse_tasks"
DAG_ = DAG(
    "reuse",
    (
        Task("silver", f"{M}:silver_from_bronze"),
        Task("report", f"{M}:artifact_from_silver", deps=("silver",), artifacts=("out",)),
        Task("source", f"{M}:external", reusable=False),
    ),
)


def _runs(settings: Settings) -> dict[str, int]:
    markers = settings.home / "markers"
    return {p.name: int(p.read_text()) for p in markers.iterdir()} if markers.exists() else {}


def _result(settings: Settings, run_id: str) -> str:
    return (settings.artifacts_dir() / "runs" / run_id / "out" / "result.txt").read_text()


@pytest.fixture
def lake(settings: Settings) -> Lake:
    lake = Lake.from_settings(settings)
    lake.write("bronze.candles", candles("X", 0, 5))
    return lake


def test_unchanged_inputs_are_reused_with_their_artifacts(settings: Settings, lake: Lake) -> None:
    first = run_dag(settings, DAG_, workers=1)
    assert first.status == "succeeded"
    assert _runs(settings) == {"silver": 1, "report": 1, "source": 1}

    second = run_dag(settings, DAG_, workers=1)
    assert second.status == "succeeded"
    assert _runs(settings) == {"silver": 1, "report": 1, "source": 2}, "only the external task runs again"
    assert second.outputs["silver"]["reused_from"] == first.run_id
    assert second.outputs["report"]["reused_from"] == first.run_id
    assert "reused_from" not in second.outputs["source"]
    assert _result(settings, second.run_id) == "5 rows", "declared artifacts are copied into the new run"

    third = run_dag(settings, DAG_, workers=1)
    assert third.outputs["report"]["reused_from"] == first.run_id, "a reuse of a reuse points at the origin"
    assert _runs(settings)["report"] == 1


def test_changed_input_table_reruns_the_task_and_its_dependents(settings: Settings, lake: Lake) -> None:
    run_dag(settings, DAG_, workers=1)
    lake.write("bronze.candles", candles("X", 5, 3))
    second = run_dag(settings, DAG_, workers=1)
    assert _runs(settings) == {"silver": 2, "report": 2, "source": 2}
    assert _result(settings, second.run_id) == "8 rows"


def test_rewritten_output_or_changed_config_or_opt_out_reruns(settings: Settings, lake: Lake) -> None:
    run_dag(settings, DAG_, workers=1)
    lake.write("silver.returns", lake.read("silver.returns").head(2))  # someone else rewrote the output
    run_dag(settings, DAG_, workers=1)
    assert _runs(settings)["silver"] == 2
    assert _runs(settings)["report"] == 2, "its input changed when silver ran again"

    reseeded = settings.model_copy(update={"seed": settings.seed + 1})
    run_dag(reseeded, DAG_, workers=1)
    assert _runs(settings)["silver"] == 3

    run_dag(reseeded, DAG_, workers=1, reuse=False)
    assert _runs(settings)["silver"] == 4


def test_an_optional_input_that_appears_reruns_the_task(settings: Settings, lake: Lake) -> None:
    run_dag(settings, DAG_, workers=1)
    gold = lake.read("silver.returns").select("instrument", "granularity", "ts")
    lake.write("gold.features", gold)
    second = run_dag(settings, DAG_, workers=1)
    assert "reused_from" in second.outputs["silver"]
    assert "reused_from" not in second.outputs["report"]
    assert _result(settings, second.run_id) == "10 rows"


def test_missing_artifact_of_the_earlier_run_reruns(settings: Settings, lake: Lake) -> None:
    first = run_dag(settings, DAG_, workers=1)
    result = settings.artifacts_dir() / "runs" / first.run_id / "out"
    for path in result.iterdir():
        path.unlink()
    result.rmdir()
    second = run_dag(settings, DAG_, workers=1)
    assert "reused_from" in second.outputs["silver"]
    assert "reused_from" not in second.outputs["report"]
    assert Path(settings.artifacts_dir() / "runs" / second.run_id / "out" / "result.txt").exists()
