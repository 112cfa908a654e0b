"""The shared most recent window on which challenger and champion are compared (same rows for both)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.errors import ModelError, RegistryError
from spxcast.features.labels import label_names
from spxcast.lake import Lake
from spxcast.lake.tables import GOLD_FEATURES

if TYPE_CHECKING:
    from spxcast.features.catalog import Catalog


class Predictor(Protocol):
    """What the registry needs from a loaded model (``spxcast.models`` estimators satisfy it)."""

    @property
    def feature_names(self) -> Sequence[str]: ...

    def predict(self, frame: pl.DataFrame) -> np.ndarray: ...


ModelLoader = Callable[[Path], Predictor]


def default_loader(catalog: Catalog) -> ModelLoader:
    """``spxcast.models.io.load_model`` checking against ``catalog`` (the running feature catalog).

    Imported lazily: it pulls in the boosting libraries.
    """
    try:
        from spxcast.models.io import load_model
    except ImportError as exc:
        raise RegistryError(
            f"loading saved models needs spxcast.models.io.load_model, which is missing: {exc}"
        ) from exc
    return cast(ModelLoader, partial(load_model, catalog=catalog))


def fitted_until(split_boundaries: Mapping[str, Any]) -> datetime | None:
    """The last bar start a version's training saw: the end of its ``valid`` split (the latest rows it was
    fitted, tuned or selected on; test, OOT and OOT2 come after). ``None`` when nothing was recorded."""
    if not split_boundaries:
        return None
    ranges = {r["name"]: r for r in split_boundaries.get("splits", [])}
    if "valid" not in ranges:
        return None
    return datetime.fromisoformat(str(ranges["valid"]["end"]))


def shared_rows(frame: pl.DataFrame, target: str, rows: int, after: datetime | None) -> pl.DataFrame:
    """The most recent ``rows`` labelled rows of ``frame`` (sorted by ts) that start after ``after``.

    ``after`` is the challenger's :func:`fitted_until`: the comparison is then on rows neither model was
    trained on (the champion trained on older data), whatever the bar size — at D a fixed row count would
    otherwise reach back into the challenger's training years.
    """
    labelled = pl.col("label_ok") & pl.col(target).is_not_null() & pl.col(target).is_finite()
    if after is not None:
        labelled = labelled & (pl.col("ts") > after)
    return frame.filter(labelled).tail(rows)


def recent_window(
    settings: Settings, lake: Lake, rows: int, features: Sequence[str], after: datetime | None = None
) -> pl.DataFrame:
    """The most recent ``rows`` labelled rows of ``gold.features`` for the configured instrument and bars
    that start after ``after`` (see :func:`shared_rows`), in time order (bar start ``ts``, UTC), with every
    column in ``features`` (the horizon lags the AR model and the persistence baseline read are gold
    features).
    """
    target = label_names(settings.horizon_minutes, settings.horizon_bars)[0]
    frame = lake.series(GOLD_FEATURES.name, settings.instrument, settings.granularity).collect()
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise RegistryError(
            f"models read columns {GOLD_FEATURES.name} does not have: {missing[:5]}; rebuild gold with the "
            "running catalog (spxcast features build) or retrain the models"
        )
    frame = shared_rows(frame, target, rows, after)
    if frame.is_empty():
        since = "" if after is None else f" after the challenger's training window (ends {after.isoformat()})"
        raise RegistryError(
            f"gold.features has no labelled rows{since} for {settings.instrument} {settings.granularity}; "
            "the champion comparison needs them: ingest newer bars and rebuild features"
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
