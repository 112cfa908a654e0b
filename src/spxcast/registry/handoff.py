"""The hand-off from training to the registry: candidate directories and the selection.

Contract (written by the training tasks in the run folder whose layout :mod:`spxcast.pipeline.runs` owns):

- ``evaluation.json``: ``{"candidate": name, "baselines": [...], "model_dir": "model",
  "report": "report/index.html", "models": {predictor: {split: {metric: value, "backtest": {...}}}}, ...}``
  where ``predictor`` is the candidate or a baseline (``zero``, ``mean``, ``persistence``) and the splits
  are ``valid``, ``test``, ``oot``, ``oot2``. RMSE and MAE are in percent units; ``dm_pvalue`` is the
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
from spxcast.pipeline.runs import (
    MODEL_DIR,
    candidate_dir,
    candidate_names,
    evaluation_file,
    selection_file,
)

__all__ = [
    "Candidate",
    "Selection",
    "candidate_names",
    "normalise_metrics",
    "read_candidate",
    "read_selection",
]

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
    report: Path | None
    """The report's entry page (its directory holds the PNGs), when training wrote one."""


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
    path = selection_file(run_dir)
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


def _flat(values: Any, prefix: str = "") -> dict[str, float]:
    """Finite numbers of a (nested) metrics dict; nested keys joined with ``_`` (``backtest_sharpe_net``)."""
    flat: dict[str, float] = {}
    for key, value in (values or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}_"))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            flat[name] = float(value)
    return flat


def normalise_metrics(name: str, models: Any, source: str) -> Metrics:
    """``metrics[split][predictor][metric]`` from training's ``models[predictor][split][metric]``, with the
    candidate renamed to ``"model"``. Non-numeric and non-finite values are dropped (MLflow stores only
    finite floats); nested metrics (the backtest) are flattened with ``_``."""
    if not isinstance(models, dict) or name not in models:
        got = sorted(models) if isinstance(models, dict) else models
        raise RegistryError(
            f"{source}: expected 'models' as {{predictor: {{split: {{metric: value}}}}}} "
            f"including the candidate {name!r}, got {got!r}"
        )
    result: Metrics = {}
    for predictor, by_split in models.items():
        if not isinstance(by_split, dict):
            raise RegistryError(f"{source}: metrics of {predictor!r} must be an object, got {by_split!r}")
        for split, values in by_split.items():
            key = MODEL if predictor == name else str(predictor)
            result.setdefault(str(split), {})[key] = _flat(values)
    return result


def read_candidate(run_dir: Path, name: str) -> Candidate:
    """Read ``<run_dir>/candidates/<name>/``."""
    directory = candidate_dir(run_dir, name)
    if not directory.is_dir():
        raise RegistryError(
            f"candidate {name!r} has no directory {directory}; "
            f"candidates of this run: {candidate_names(run_dir)}"
        )
    evaluation_path = evaluation_file(run_dir, name)
    evaluation = _read_json(evaluation_path, "evaluation")
    metrics = normalise_metrics(name, evaluation.get("models"), str(evaluation_path))
    model_dir = directory / str(evaluation.get("model_dir", MODEL_DIR))
    if not model_dir.is_dir():
        raise RegistryError(f"candidate {name!r}: model directory {model_dir} is missing")
    report = directory / str(evaluation["report"]) if evaluation.get("report") else None
    params = {k: evaluation[k] for k in _PARAM_KEYS if k in evaluation}
    model_document = model_dir / "model.json"
    if model_document.is_file():
        params["model"] = json.loads(model_document.read_text()).get("params", {})
    return Candidate(
        name=name,
        directory=directory,
        model_dir=model_dir,
        metrics=metrics,
        params=params,
        report=report if report is not None and report.is_file() else None,
    )


_PARAM_KEYS = (
    "target",
    "horizon_minutes",
    "horizon_bars",
    "cost_bps",
    "catalog_hash",
    "feature_families",
    "seed",
    "tuning",
)
