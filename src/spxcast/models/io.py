"""Saved models: a directory, never only a pickle.

Layout of ``<dir>/``::

    model.json       kind, constructor params, feature_names, fitted state (coefficients, rounds, means)
    booster.txt      LightGBM text model          (lightgbm only)
    booster.json     XGBoost JSON model           (xgboost only)
    metadata.json    catalog_hash (fingerprint of the whole catalog trained under), feature_entries (the
                     catalog entries of the model's features, in its column order), feature_names,
                     training window, split boundaries, lake versions, seeds, library versions, anything
                     else the trainer records

Every load is checked against the running catalog: a model whose features are defined differently there
(or missing) is refused with the names of the differing features.

No preprocessing is fitted today (boosters take raw features with NaN; the AR model maps a missing
regressor to zero, a rule, not a fitted value); a fitted transform would be saved here too.
"""

from __future__ import annotations

import importlib
import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from spxcast.errors import ModelError
from spxcast.features.catalog import Catalog, entry_differences
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


def save_model(
    model: Forecaster,
    directory: str | Path,
    *,
    catalog: Catalog | None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` and its metadata to ``directory``; returns the directory.

    ``catalog`` is the catalog the model was trained under (every feature of the model must be in it):
    its fingerprint and the entries of the model's features are recorded for the load check. ``None``
    only for models of columns outside any catalog (tests, ad-hoc frames); such a model cannot be loaded
    against a catalog.
    """
    if catalog is not None:
        unknown = [n for n in model.feature_names if n not in catalog]
        if unknown:
            raise ModelError(f"model reads {unknown[:5]}, which the feature catalog does not declare")
    path = model.save(directory)
    document = {
        **dict(metadata or {}),
        "kind": model.kind,
        "feature_names": model.feature_names,
        "catalog_hash": catalog.fingerprint() if catalog is not None else None,
        "feature_entries": catalog.select(model.feature_names).entries() if catalog is not None else None,
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
    catalog: Catalog | None,
    expected_features: Sequence[str] | None = None,
) -> Forecaster:
    """Load a saved model; refuse it when its features differ from the running catalog or the caller's.

    Parameters
    ----------
    catalog : the running feature catalog; every feature the model reads must be defined there exactly
        as when it was trained (name, group, unit, lookback, span, dtype, description), else
        :class:`ModelError` names the differing features. ``None`` skips the check: only for models of
        columns outside any catalog (tests).
    expected_features : when given, the model's features must be exactly these, in this order.

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
    if catalog is not None:
        check_catalog(path, model.feature_names, metadata, catalog)
    model.metadata_ = metadata  # type: ignore[attr-defined]
    return model


def check_catalog(path: Path, features: Sequence[str], metadata: Mapping[str, Any], catalog: Catalog) -> None:
    """Raise :class:`ModelError` naming every feature of the model defined differently in ``catalog``."""
    entries = metadata.get("feature_entries")
    if not isinstance(entries, list):
        raise ModelError(
            f"model at {path} records no feature definitions (feature_entries), so it cannot be checked "
            "against the running feature catalog; retrain it"
        )
    differences = entry_differences(entries, catalog, features)
    if differences:
        shown = "; ".join(differences[:10]) + (
            f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
        )
        raise ModelError(
            f"model at {path} was trained under another feature catalog: {len(differences)} of its "
            f"{len(features)} features differ from the running catalog ({shown}). Retrain the model with "
            "the running catalog, or run the configuration (granularity, horizon, lags) it was trained with"
        )
