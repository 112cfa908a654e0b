"""What a task receives: the settings, the lake, and where its run keeps artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.pipeline.runs import run_dir


@dataclass(frozen=True)
class TaskContext:
    """Per-task context. ``run_dir`` holds artifacts shared by the tasks of one pipeline run."""

    settings: Settings
    run_id: str
    task: str
    lake_override: Lake | None = field(default=None, repr=False, compare=False)
    """The lake the runner hands in (one that records table versions); default the settings' lake."""

    @property
    def lake(self) -> Lake:
        return self.lake_override or Lake.from_settings(self.settings)

    @property
    def run_dir(self) -> Path:
        path = run_dir(self.settings, self.run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path
