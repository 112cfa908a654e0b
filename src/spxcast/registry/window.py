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


def target_column(horizon_minutes: int, horizon_bars: int | None = None) -> str:
    from spxcast.features.labels import label_names

    return label_names(horizon_minutes, horizon_bars)[0]


def recent_window(settings: Settings, lake: Lake, rows: int, features: Sequence[str]) -> pl.DataFrame:
    """The most recent ``rows`` labelled rows of ``gold.features`` for the configured instrument and bars,
    in time order (bar start ``ts``, UTC), with every column in ``features``.

    Features that are not gold columns are the lagged horizon returns the AR model and the persistence
    baseline read; they are added over the whole history first (as training does) so the window's first
    rows have their lags.
    """
    target = target_column(settings.horizon_minutes, settings.horizon_bars)
    frame = (
        lake.scan("gold.features")
        .filter(
            (pl.col("instrument") == settings.instrument) & (pl.col("granularity") == settings.granularity)
        )
        .sort("ts")
        .collect()
    )
    missing = [f for f in features if f not in frame.columns]
    if missing:
        frame = _with_lags(frame, target, settings.horizon_minutes, missing)
    frame = frame.filter(pl.col("label_ok") & pl.col(target).is_not_null() & pl.col(target).is_finite()).tail(
        rows
    )
    if frame.is_empty():
        raise RegistryError(
            f"gold.features has no labelled rows for {settings.instrument} {settings.granularity}; "
            "the champion comparison needs the recent window"
        )
    return frame


def _with_lags(
    frame: pl.DataFrame, target: str, horizon_minutes: int, missing: Sequence[str]
) -> pl.DataFrame:
    from spxcast.models.lags import add_horizon_lags, lag_column

    orders = {lag_column(horizon_minutes, k): k for k in range(1, 1000)}
    unknown = [name for name in missing if name not in orders]
    if unknown:
        raise RegistryError(f"models read columns gold.features does not have: {unknown[:5]}")
    return add_horizon_lags(frame, target, horizon_minutes, max(orders[name] for name in missing))


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
