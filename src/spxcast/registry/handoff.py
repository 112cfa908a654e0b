"""The hand-off from training to the registry: candidate directories and the selection.

Contract (written by the training tasks in ``<run_dir>``):

- ``candidates/<name>/``: the saved model (``spxcast.models.io.save_model``; either the directory itself
  or its ``model/`` subdirectory), ``evaluation.json`` and report files (HTML, PNG, …).
- ``evaluation.json``: ``{"model": name, "params": {...}, "metrics": {split: {predictor: {metric: value}}}}``
  where ``predictor`` is the candidate's name or a baseline (``zero``, ``mean``, ``persistence``) and the
  splits are ``valid``, ``test``, ``oot``, ``oot2``. RMSE and MAE are in percent units; ``dm_pvalue`` is the
  Diebold–Mariano p-value of the predictor against the zero forecast.
- ``selection.json``: ``{"selected": name | null, "candidates": {...}, "reasons": {...},
  "split_boundaries": {...}, "lake_versions": {table: version}}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spxcast.errors import RegistryError

MODEL = "model"
"""Key under which the candidate's own metrics are kept after :func:`read_candidate` normalises them."""

BASELINES = ("zero", "mean", "persistence")
SPLITS = ("valid", "test", "oot", "oot2")

Metrics = dict[str, dict[str, dict[str, float]]]
"""``metrics[split][predictor][metric]``; predictor is ``"model"`` or a baseline name."""


@dataclass(frozen=True)
class Candidate:
    """One trained candidate as handed over by training."""

    name: str
    directory: Path
    model_dir: Path
    metrics: Metrics
    params: dict[str, Any]
    report_files: tuple[Path, ...]


@dataclass(frozen=True)
class Selection:
    """What ``select_model`` decided, and the lineage it recorded for the run."""

    selected: str | None
    reasons: dict[str, Any]
    candidates: dict[str, Any]
    split_boundaries: dict[str, Any]
    lake_versions: dict[str, int]
    raw: dict[str, Any] = field(repr=False)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise RegistryError(f"{what} {path} does not exist; run the task that writes it first")
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{what} {path} is not readable JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise RegistryError(f"{what} {path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_selection(run_dir: Path) -> Selection:
    """Read ``<run_dir>/selection.json``."""
    path = run_dir / "selection.json"
    raw = _read_json(path, "selection")
    if "selected" not in raw:
        raise RegistryError(
            f"selection {path}: expected a 'selected' key (a candidate name or null), got {sorted(raw)}"
        )
    selected = raw["selected"]
    if selected is not None and not isinstance(selected, str):
        raise RegistryError(f"selection {path}: 'selected' must be a name or null, got {selected!r}")
    lake_versions = {str(k): int(v) for k, v in (raw.get("lake_versions") or {}).items() if v is not None}
    return Selection(
        selected=selected,
        reasons=dict(raw.get("reasons") or {}),
        candidates=dict(raw.get("candidates") or {}),
        split_boundaries=dict(raw.get("split_boundaries") or {}),
        lake_versions=lake_versions,
        raw=raw,
    )


def candidate_names(run_dir: Path) -> list[str]:
    """Names of the candidate directories of a run (each holding an ``evaluation.json``)."""
    root = run_dir / "candidates"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "evaluation.json").is_file())


def normalise_metrics(name: str, metrics: Any, source: str) -> Metrics:
    """``metrics[split][predictor][metric]`` with the candidate's own entry renamed to ``"model"``.

    Non-numeric and non-finite values are dropped (MLflow stores only finite floats).
    """
    if not isinstance(metrics, dict) or not metrics:
        raise RegistryError(
            f"{source}: expected 'metrics' as {{split: {{predictor: {{metric: value}}}}}}, got {metrics!r}"
        )
    result: Metrics = {}
    for split, by_predictor in metrics.items():
        if not isinstance(by_predictor, dict):
            raise RegistryError(
                f"{source}: metrics of split {split!r} must be an object, got {by_predictor!r}"
            )
        if name not in by_predictor and MODEL not in by_predictor:
            raise RegistryError(
                f"{source}: split {split!r} has no metrics for the candidate {name!r}; "
                f"got {sorted(by_predictor)}"
            )
        result[split] = {}
        for predictor, values in by_predictor.items():
            key = MODEL if predictor in (name, MODEL) else str(predictor)
            result[split][key] = {
                str(metric): float(value)
                for metric, value in (values or {}).items()
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            }
    return result


def read_candidate(run_dir: Path, name: str) -> Candidate:
    """Read ``<run_dir>/candidates/<name>/``."""
    directory = run_dir / "candidates" / name
    if not directory.is_dir():
        raise RegistryError(
            f"candidate {name!r} has no directory {directory}; "
            f"candidates of this run: {candidate_names(run_dir)}"
        )
    evaluation_path = directory / "evaluation.json"
    evaluation = _read_json(evaluation_path, "evaluation")
    metrics = normalise_metrics(name, evaluation.get("metrics"), str(evaluation_path))
    model_dir = directory / "model" if (directory / "model").is_dir() else directory
    reports = tuple(
        sorted(
            p
            for p in directory.iterdir()
            if p.is_file() and p.suffix.lower() in {".html", ".png", ".md", ".csv"}
        )
    )
    return Candidate(
        name=name,
        directory=directory,
        model_dir=model_dir,
        metrics=metrics,
        params=dict(evaluation.get("params") or {}),
        report_files=reports,
    )
