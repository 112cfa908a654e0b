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
