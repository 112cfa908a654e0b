"""Task callables for runner tests: they write marker files so tests can see what ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spxcast.pipeline.context import TaskContext


def _marker(ctx: TaskContext) -> Path:
    directory = ctx.settings.home / "markers"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / ctx.task


def record(ctx: TaskContext) -> dict[str, Any]:
    marker = _marker(ctx)
    count = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(count))
    return {"task": ctx.task, "runs": count}


def fail_until_flag(ctx: TaskContext) -> dict[str, Any]:
    """Fails while the file <home>/allow-<task> does not exist."""
    if not (ctx.settings.home / f"allow-{ctx.task}").exists():
        raise RuntimeError(f"{ctx.task} told to fail")
    return record(ctx)


def flaky_once(ctx: TaskContext) -> dict[str, Any]:
    """Fails on its first attempt, succeeds on the second (exercises retries)."""
    marker = ctx.settings.home / f"flaky-{ctx.task}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("seen")
        raise RuntimeError("transient failure")
    return record(ctx)


def die(ctx: TaskContext) -> None:
    """Kills its own worker process, as the OOM killer would."""
    os._exit(9)


def hold(ctx: TaskContext) -> dict[str, Any]:
    """Writes its worker's pid to <home>/pids/<task>, then waits (at most 60 s) for <home>/allow-<task>."""
    import time

    pids = ctx.settings.home / "pids"
    pids.mkdir(parents=True, exist_ok=True)
    (pids / ctx.task).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (ctx.settings.home / f"allow-{ctx.task}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return record(ctx)
