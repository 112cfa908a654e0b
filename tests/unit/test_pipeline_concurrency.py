"""One pipeline run per home, and workers that never outlive their runner (real processes).

Regressions: two ``pipeline run`` at once on one home interleaved (each reused the other's half-finished
tasks); after ``kill -9`` of the runner its worker processes stayed alive, orphaned.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from spxcast.config import Settings, load_settings
from spxcast.errors import PipelineError
from spxcast.pipeline.runner import run_dag
from spxcast.pipeline.spec import DAG, Task

M = "pipeline_fixture_tasks"
HOLDING = DAG("holding", (Task("held", f"{M}:hold", retries=0),))


def _run_holding(home: str) -> None:
    run_dag(load_settings(home=Path(home)), HOLDING, workers=1)


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper counts as dead)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def _start_runner(settings: Settings) -> multiprocessing.process.BaseProcess:
    runner = multiprocessing.get_context("spawn").Process(target=_run_holding, args=(str(settings.home),))
    runner.start()
    _wait_for(settings.home / "pids" / "held")
    return runner


def test_a_second_run_on_the_same_home_is_refused_naming_the_running_one(settings: Settings) -> None:
    runner = _start_runner(settings)
    try:
        with pytest.raises(PipelineError, match=r"another pipeline run is in progress.*run holding-\d+"):
            run_dag(settings, DAG("other", (Task("a", f"{M}:record"),)))
        assert not (settings.home / "markers" / "a").exists(), "the refused run must not execute anything"
    finally:
        (settings.home / "allow-held").write_text("")
        runner.join(timeout=60)
    assert runner.exitcode == 0
    summary = run_dag(settings, DAG("other", (Task("a", f"{M}:record"),)))
    assert summary.status == "succeeded", "the home is free once the first run finished"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_kill_9_of_the_runner_takes_its_workers_and_frees_the_home(settings: Settings) -> None:
    runner = _start_runner(settings)
    worker = int((settings.home / "pids" / "held").read_text())
    assert _alive(worker)
    assert runner.pid is not None
    os.kill(runner.pid, signal.SIGKILL)
    runner.join(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "a worker outlived its killed runner by more than 5 s"
    summary = run_dag(settings, DAG("other", (Task("a", f"{M}:record"),)))
    assert summary.status == "succeeded", "a crashed run must not leave the home locked"
