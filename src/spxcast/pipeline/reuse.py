"""Reuse of task results across pipeline runs: a task is not executed again when nothing it depends on
changed since it last succeeded.

While a task runs, the runner hands it a :class:`RecordingLake` that notes the version of every table the
task read and wrote. With the task's outputs the runner stores a *reuse record*: those versions, a
fingerprint of the configuration and of the spxcast source code, and the run artifacts the task declares
(``Task.artifacts``, paths under the run directory). In a later run the task is reused (its outputs and
artifacts copied, nothing executed) only when

- it is declared reusable (tasks reading external sources, such as ingestion, are not),
- it read at least one lake table,
- the configuration fingerprint (all but the runner, registry and app-database sections) and the code
  fingerprint are equal,
- every table it read is still at the version it read, and every table it wrote is still at the version
  it wrote (nothing rewrote its outputs since), and
- the earlier run directory still holds its declared artifacts.

Anything else runs the task again. This is what makes a second ``make demo`` cheap and still honest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.pipeline.spec import Task

REUSE_KEY = "_reuse"
"""Key of the reuse record inside a task's recorded outputs."""

_PACKAGE = Path(__file__).resolve().parents[1]


class RecordingLake(Lake):
    """A :class:`Lake` that records the version of each table read (pinned at first read) and written.

    A table found absent is recorded as read at version ``None``: if it appears later, the task reruns.
    """

    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None) -> None:
        super().__init__(root, storage_options)
        self.reads: dict[str, int | None] = {}
        self.writes: dict[str, int] = {}

    def exists(self, name: str) -> bool:
        present = super().exists(name)
        if not present:
            self.reads.setdefault(name, None)
        return present

    def scan(self, name: str, version: int | None = None) -> pl.LazyFrame:
        if version is None and name not in self.writes:
            version = self.version(name)
        frame = super().scan(name, version)
        if version is not None:
            self.reads.setdefault(name, version)
        return frame

    def write(self, name: str, frame: pl.DataFrame) -> int | None:
        version = super().write(name, frame)
        if version is not None:
            self.writes[name] = version
        return version


def code_fingerprint(package: Path = _PACKAGE) -> str:
    """SHA-256 of every Python source file of the spxcast package (any code change invalidates reuse)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


_NOT_DATA = {"pipeline", "registry", "db"}
"""Sections that cannot change what a reusable task computes: the runner's own settings, the model
registry (only registration reads it, and it reads no lake table) and where run bookkeeping is kept."""


def config_fingerprint(settings: Settings) -> str:
    """SHA-256 of the effective configuration, except sections that do not shape data (``_NOT_DATA``)."""
    dumped = settings.model_dump(mode="json", exclude=_NOT_DATA)
    return hashlib.sha256(json.dumps(dumped, sort_keys=True, default=str).encode()).hexdigest()


def reuse_record(settings: Settings, lake: RecordingLake, task: Task, code: str) -> dict[str, Any]:
    """What a later run compares to decide whether this task's result still holds."""
    return {
        "reusable": task.reusable and any(version is not None for version in lake.reads.values()),
        "config": config_fingerprint(settings),
        "code": code,
        "reads": dict(sorted(lake.reads.items())),
        "writes": dict(sorted(lake.writes.items())),
        "artifacts": list(task.artifacts),
    }


@dataclass(frozen=True)
class Reusable:
    """A previous successful attempt whose result still holds."""

    run_id: str
    outputs: dict[str, Any]


def still_valid(
    record: dict[str, Any], settings: Settings, lake: Lake, code: str, run_dir: Path, task: Task
) -> bool:
    """Whether a reuse record from an earlier attempt (whose run directory is ``run_dir``) still holds."""
    if not (task.reusable and record.get("reusable")):
        return False
    if record.get("config") != config_fingerprint(settings) or record.get("code") != code:
        return False
    if list(record.get("artifacts", [])) != list(task.artifacts):
        return False
    expected = {**record.get("reads", {}), **record.get("writes", {})}
    if any(lake.version(name) != version for name, version in expected.items()):
        return False
    return all((run_dir / artifact).exists() for artifact in task.artifacts)


def copy_artifacts(task: Task, source: Path, destination: Path) -> None:
    """Copy the task's declared artifacts from an earlier run directory (each replaced atomically)."""
    for artifact in task.artifacts:
        origin, target = source / artifact, destination / artifact
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.reuse")
        shutil.rmtree(staging, ignore_errors=True)
        if origin.is_dir():
            shutil.copytree(origin, staging)
        else:
            shutil.copy2(origin, staging)
        if target.is_dir():
            shutil.rmtree(target)
        staging.replace(target)
