"""The shared most recent window on which challenger and champion are compared (same rows for both)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.errors import ModelError, RegistryError
from spxcast.lake import Lake


class Predictor(Protocol):
    """What the registry needs from a loaded model (``spxcast.models`` estimators satisfy it)."""

    @property
    def feature_names(self) -> Sequence[str]: ...

    def predict(self, frame: pl.DataFrame) -> np.ndarray: ...


ModelLoader = Callable[[Path], Predictor]


def default_loader() -> ModelLoader:
    """``spxcast.models.io.load_model`` (imported lazily: it pulls in the boosting libraries)."""
    try:
        from spxcast.models.io import load_model
    except ImportError as exc:
        raise RegistryError(
            f"loading saved models needs spxcast.models.io.load_model, which is missing: {exc}"
        ) from exc
    return cast(ModelLoader, load_model)


def target_column(horizon_minutes: int) -> str:
    return f"target_ret_{horizon_minutes}m_pct"


def recent_window(settings: Settings, lake: Lake, rows: int) -> pl.DataFrame:
    """The most recent ``rows`` labelled rows of ``gold.features`` for the configured instrument and bars,
    in time order (bar start ``ts``, UTC)."""
    frame = (
        lake.scan("gold.features")
        .filter(
            (pl.col("instrument") == settings.instrument)
            & (pl.col("granularity") == settings.granularity)
            & pl.col("label_ok")
        )
        .sort("ts")
        .tail(rows)
        .collect()
    )
    if frame.is_empty():
        raise RegistryError(
            f"gold.features has no labelled rows for {settings.instrument} {settings.granularity}; "
            "the champion comparison needs the recent window"
        )
    return frame


def window_rmse(model: Predictor, frame: pl.DataFrame, target: str) -> float:
    """RMSE (percent units) of ``model`` on ``frame``'s labelled rows."""
    try:
        predictions = np.asarray(model.predict(frame), dtype=np.float64)
    except (ModelError, KeyError, ValueError, pl.exceptions.PolarsError) as exc:
        raise RegistryError(f"model cannot predict the shared window: {exc}") from exc
    actual = frame[target].to_numpy().astype(np.float64)
    if predictions.shape != actual.shape:
        raise RegistryError(f"model returned {predictions.shape} predictions for {actual.shape} rows")
    return float(np.sqrt(np.mean((predictions - actual) ** 2)))
