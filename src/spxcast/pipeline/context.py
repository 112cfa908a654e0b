"""What a task receives: the settings, the lake, and where its run keeps artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spxcast.config import Settings
from spxcast.lake import Lake


@dataclass(frozen=True)
class TaskContext:
    """Per-task context. ``run_dir`` holds artifacts shared by the tasks of one pipeline run."""

    settings: Settings
    run_id: str
    task: str

    @property
    def lake(self) -> Lake:
        return Lake.from_settings(self.settings)

    @property
    def run_dir(self) -> Path:
        path = self.settings.artifacts_dir() / "runs" / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path
