"""The estimator protocol every forecaster follows (scikit-learn style).

The constructor only stores hyperparameters; :meth:`Forecaster.fit` validates the frames and returns
``self``; learned state ends in ``_``; :meth:`Forecaster.predict` refuses unfitted use and missing or
unusable columns. Frames are Polars frames holding the feature columns (any extra columns are ignored)
and, for fitting, the target column (forward H-minute return in percent of the bar's close).
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from spxcast.errors import ModelError

MODEL_FILE = "model.json"
FORMAT_VERSION = 1


class Forecaster(ABC):
    """Base class of every model and baseline.

    Parameters
    ----------
    features : feature columns the model reads, in this order.
    target : the label column (forward return over the horizon, percent), read by ``fit`` only.
    """

    kind: ClassVar[str]

    def __init__(self, features: Sequence[str], target: str) -> None:
        self.features = tuple(features)
        self.target = target

    # -- protocol -----------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), enough to rebuild an unfitted copy."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: _jsonable(getattr(self, name)) for name in names}

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "fitted_", False)

    def fit(self, train: pl.DataFrame, valid: pl.DataFrame) -> Self:
        """Fit on ``train``; ``valid`` serves early stopping or order selection only. Returns ``self``."""
        if not self.features and self.requires_features:
            raise ModelError(f"{type(self).__name__} needs at least one feature column; got none")
        x_train, y_train = self.feature_matrix(train, "train"), self.target_vector(train, "train")
        x_valid, y_valid = self.feature_matrix(valid, "valid"), self.target_vector(valid, "valid")
        if len(y_train) == 0 or len(y_valid) == 0:
            raise ModelError(
                f"{type(self).__name__}.fit needs non-empty train and valid frames; "
                f"got {len(y_train)} and {len(y_valid)} rows"
            )
        self._fit(x_train, y_train, x_valid, y_valid)
        self.fitted_ = True
        return self

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Forecast of the forward return (percent) for every row of ``frame``, as float64."""
        return self.predict_matrix(self.feature_matrix(frame, "predict"))

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """Forecasts (percent, float64) for a Float32 matrix whose columns are ``feature_names`` in order:
        the same numbers as :meth:`predict` without building a frame (the serving path)."""
        if not self.is_fitted:
            raise ModelError(
                f"{type(self).__name__} is not fitted; call fit(train, valid) or load(dir) first"
            )
        return np.asarray(self._predict(x), dtype=np.float64)

    def feature_importance(self) -> dict[str, float]:
        """Importance per feature (model-specific unit, larger = more important); empty when undefined."""
        return {}

    def save(self, directory: str | Path) -> Path:
        """Write the fitted model to ``directory`` (created): ``model.json`` plus model-specific files."""
        if not self.is_fitted:
            raise ModelError(f"{type(self).__name__} is not fitted; nothing to save")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "params": self.params,
            "feature_names": self.feature_names,
            "state": self._state(),
        }
        self._save_files(path)
        (path / MODEL_FILE).write_text(json.dumps(document, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a fitted model from what :meth:`save` wrote."""
        path = Path(directory)
        document = read_model_document(path)
        if document["kind"] != cls.kind:
            raise ModelError(f"{path} holds a {document['kind']!r} model; {cls.__name__} loads {cls.kind!r}")
        model = cls(**document["params"])
        if model.feature_names != document["feature_names"]:
            raise ModelError(f"{path}: feature_names disagree with the stored parameters")
        model._restore(document["state"], path)
        model.fitted_ = True
        return model

    # -- what subclasses implement ------------------------------------------------------------------
    requires_features: ClassVar[bool] = True

    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Fitted state as JSON (coefficients, rounds…); files go through :meth:`_save_files`."""

    @abstractmethod
    def _restore(self, state: dict[str, Any], directory: Path) -> None: ...

    def _save_files(self, directory: Path) -> None:
        """Write model files other than ``model.json`` (boosters); none by default."""
        return None

    # -- validation (public so tuning can build its matrices the same way) ------------------------
    def feature_matrix(self, frame: pl.DataFrame, role: str = "predict") -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ModelError(
                f"{type(self).__name__}: the {role} frame lacks feature columns {missing[:5]}"
                f"{' …' if len(missing) > 5 else ''} ({len(missing)} of {len(self.features)} expected)"
            )
        if not self.features:
            return np.empty((frame.height, 0), dtype=np.float32)
        try:
            selected = frame.select(pl.col(list(self.features)).cast(pl.Float32, strict=True))
        except pl.exceptions.PolarsError as exc:
            kinds = {c: str(frame.schema[c]) for c in self.features if not frame.schema[c].is_numeric()}
            raise ModelError(
                f"{type(self).__name__}: the {role} frame has non-numeric feature columns {kinds}; "
                "expected numbers"
            ) from exc
        return selected.to_numpy()

    def target_vector(self, frame: pl.DataFrame, role: str = "fit") -> np.ndarray:
        if self.target not in frame.columns:
            raise ModelError(f"{type(self).__name__}: the {role} frame has no target column {self.target!r}")
        y = frame.get_column(self.target).cast(pl.Float64).to_numpy()
        if not np.isfinite(y).all():
            bad = int((~np.isfinite(y)).sum())
            raise ModelError(
                f"{type(self).__name__}: the {role} frame has {bad} null or non-finite targets in "
                f"{self.target!r}; keep only rows with label_ok"
            )
        return y


def read_model_document(directory: Path) -> dict[str, Any]:
    """The parsed ``model.json`` of a saved model directory."""
    file = directory / MODEL_FILE
    if not file.is_file():
        raise ModelError(f"{directory} is not a saved model: {MODEL_FILE} is missing")
    try:
        document: dict[str, Any] = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{file} is not valid JSON: {exc}") from exc
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{file} has format_version {document.get('format_version')!r}; "
            f"this spxcast reads {FORMAT_VERSION}"
        )
    return document


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
