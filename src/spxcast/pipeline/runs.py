"""Pipeline runs on disk: run ids and the layout of a run's folder — the one module that knows them.

Layout of ``<home>/artifacts/runs/<run id>/`` (written by the training tasks, read by ``spxcast train``,
``spxcast evaluate`` and the registry hand-off)::

    candidates/<model>/
        model/               saved model (spxcast.models.io: model.json, booster, metadata.json)
        evaluation.json      every metric, every split, the candidate AND the baselines; splits, lake
                             versions, tuning stages, feature importance
        predictions.parquet  split, ts, actual, one forecast column per model (rebuilds the evaluation)
        report/index.html    the report, with its PNGs
    selection.json           selected candidate (or null), why each lost, splits, lake versions

A run id is ``<kind>-<UTC yyyymmddThhmmss>-<6 hex>``: sortable by start time and unique across
concurrent starts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from spxcast.config import Settings

RUNS_DIR = "runs"
CANDIDATES_DIR = "candidates"
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.parquet"
SELECTION_FILE = "selection.json"
MODEL_DIR = "model"
REPORT_DIR = "report"
REPORT_FILE = f"{REPORT_DIR}/index.html"


def new_run_id(kind: str, now: datetime | None = None) -> str:
    """A fresh run id for a run of ``kind`` (a DAG name, ``train``, ``features``, ``task-<name>``)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{kind}-{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def runs_root(settings: Settings) -> Path:
    """The folder holding every run's folder."""
    return settings.artifacts_dir() / RUNS_DIR


def run_dir(settings: Settings, run_id: str) -> Path:
    """The folder of run ``run_id`` (not created)."""
    return runs_root(settings) / run_id


def resolve_run(settings: Settings, run: str) -> Path:
    """A run folder from a run id or a path to the folder itself (``spxcast evaluate RUN``)."""
    path = Path(run)
    return path if path.is_dir() else run_dir(settings, run)


def candidates_root(run: Path) -> Path:
    return run / CANDIDATES_DIR


def candidate_dir(run: Path, model: str) -> Path:
    """``<run>/candidates/<model>``."""
    return candidates_root(run) / model


def evaluation_file(run: Path, model: str) -> Path:
    return candidate_dir(run, model) / EVALUATION_FILE


def predictions_file(run: Path, model: str) -> Path:
    return candidate_dir(run, model) / PREDICTIONS_FILE


def selection_file(run: Path) -> Path:
    return run / SELECTION_FILE


def candidate_names(run: Path) -> list[str]:
    """Names of the candidate folders of a run that hold an ``evaluation.json``, sorted."""
    root = candidates_root(run)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / EVALUATION_FILE).is_file())
