"""Saved models: a directory, never only a pickle.

Layout of ``<dir>/``::

    model.json       kind, constructor params, feature_names, fitted state (coefficients, rounds, means)
    booster.txt      LightGBM text model          (lightgbm only)
    booster.json     XGBoost JSON model           (xgboost only)
    metadata.json    catalog_hash, feature_names, training window, split boundaries, lake versions, seeds,
                     library versions, anything else the trainer records

No preprocessing is fitted today (boosters take raw features with NaN; the AR model maps a missing
regressor to zero, a rule, not a fitted value); a fitted transform would be saved here too.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from spxcast.errors import ModelError
from spxcast.models.base import Forecaster, read_model_document

METADATA_FILE = "metadata.json"

MODEL_CLASSES: dict[str, str] = {
    "zero": "spxcast.models.baselines:ZeroForecaster",
    "mean": "spxcast.models.baselines:MeanForecaster",
    "persistence": "spxcast.models.baselines:PersistenceForecaster",
    "ar": "spxcast.models.ar:ARForecaster",
    "lightgbm": "spxcast.models.lightgbm:LightGBMForecaster",
    "xgboost": "spxcast.models.xgboost:XGBoostForecaster",
}
_LIBRARIES = ("spxcast", "numpy", "polars", "lightgbm", "xgboost-cpu", "optuna", "scipy")


def model_class(kind: str) -> type[Forecaster]:
    """The forecaster class registered under ``kind`` (imported on demand)."""
    try:
        module_name, class_name = MODEL_CLASSES[kind].split(":")
    except KeyError as exc:
        raise ModelError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODEL_CLASSES)}") from exc
    cls: type[Forecaster] = getattr(importlib.import_module(module_name), class_name)
    return cls


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def catalog_hash(entries: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 of feature catalog entries (JSON with sorted keys, in the given order)."""
    payload = json.dumps([dict(e) for e in entries], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def save_model(
    model: Forecaster, directory: str | Path, *, catalog_hash: str, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` and its metadata to ``directory``; returns the directory."""
    path = model.save(directory)
    document = {
        **dict(metadata or {}),
        "kind": model.kind,
        "feature_names": model.feature_names,
        "catalog_hash": catalog_hash,
        "library_versions": library_versions(),
    }
    (path / METADATA_FILE).write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    return path


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """The ``metadata.json`` of a saved model."""
    file = Path(directory) / METADATA_FILE
    if not file.is_file():
        raise ModelError(f"{directory} is not a saved model: {METADATA_FILE} is missing")
    data: dict[str, Any] = json.loads(file.read_text())
    return data


def load_model(
    directory: str | Path,
    *,
    expected_features: Sequence[str] | None = None,
    expected_catalog_hash: str | None = None,
) -> Forecaster:
    """Load a saved model; refuse it when its features (or catalog hash) differ from what the caller runs.

    The returned model carries ``metadata_`` (the dict of ``metadata.json``).
    """
    path = Path(directory)
    kind = read_model_document(path)["kind"]
    metadata = read_metadata(path)
    model = model_class(kind).load(path)
    if expected_features is not None and list(expected_features) != model.feature_names:
        wanted, have = list(expected_features), model.feature_names
        missing, extra = sorted(set(wanted) - set(have)), sorted(set(have) - set(wanted))
        raise ModelError(
            f"model at {path} was trained on {len(have)} features, the caller expects {len(wanted)}: "
            f"missing from model {missing[:5]}, unknown to caller {extra[:5]}"
            + ("" if missing or extra else " (same names, different order)")
        )
    if expected_catalog_hash is not None and expected_catalog_hash != metadata.get("catalog_hash"):
        raise ModelError(
            f"model at {path} was trained with feature catalog {metadata.get('catalog_hash')!r}; "
            f"the running catalog is {expected_catalog_hash!r}; retrain or load a matching version"
        )
    model.metadata_ = metadata  # type: ignore[attr-defined]
    return model
