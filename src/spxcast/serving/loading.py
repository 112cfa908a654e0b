"""Loading a registered version for serving, with the checks a deploy requires.

A version is loaded from the registry (its saved model directory and its recorded evaluation predictions,
``evaluation/predictions.parquet`` of its MLflow run), then:

1. its catalog fingerprint must equal the running catalog's;
2. a sample of its recorded predictions is replayed through the serving feature path and must be equal
   (bit for bit for trees; to the last bits of float64 summation for AR);
3. its conformal interval is calibrated on its held-out (test split) residuals.

Any failure raises :class:`~spxcast.serving.errors.DeployRefused` naming what differed.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from spxcast.config import Settings
from spxcast.errors import SpxcastError
from spxcast.models.base import Forecaster
from spxcast.serving.conformal import MIN_CALIBRATION_ROWS, ConformalInterval
from spxcast.serving.errors import DeployRefused, NotFound
from spxcast.serving.features import FeatureSource

log = logging.getLogger(__name__)

RECORDED_PREDICTIONS = "evaluation/predictions.parquet"
CALIBRATION_SPLIT = "test"
REPLAY_RTOL = 1e-12
"""Replayed predictions must equal the recorded ones up to float64 summation order (a matrix product over
200 rows and over 20,000 rows may round the last bit differently); trees reproduce them bit for bit."""


@dataclass(frozen=True)
class LoadedModel:
    """A registered version ready to predict: the model, its features and its interval."""

    model_name: str
    version: int
    kind: str
    candidate: str
    features: tuple[str, ...]
    model: Forecaster
    conformal: ConformalInterval | None
    loaded_at: datetime
    aliases: tuple[str, ...] = field(default=())

    def predict(self, x: np.ndarray) -> float:
        """Forecast (percent) for one Float32 row in ``features`` order."""
        return float(self.model.predict_matrix(x.reshape(1, -1))[0])


def running_fingerprint(settings: Settings) -> str:
    """Fingerprint of the running feature catalog (what every loaded model must have been trained with)."""
    from spxcast.features.catalog import feature_catalog

    return feature_catalog(settings).fingerprint()


class VersionLoader:
    """Loads versions of the settings' registered model (MLflow client opened on first use)."""

    def __init__(
        self,
        settings: Settings,
        source: FeatureSource,
        fingerprint: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.fingerprint = fingerprint or (lambda: running_fingerprint(settings))
        self._registry: object | None = None

    @property
    def registry(self):
        from spxcast.registry import ModelRegistry

        if self._registry is None:
            self._registry = ModelRegistry(self.settings)
        return self._registry

    def champion(self) -> int | None:
        """The version under the ``champion`` alias, if any."""
        from spxcast.registry import CHAMPION

        info = self.registry.by_alias(CHAMPION)
        return None if info is None else int(info.version)

    def load(self, version: int) -> LoadedModel:
        """Download, check and calibrate ``version``; raises DeployRefused with the reason."""
        from spxcast.features.catalog import feature_catalog
        from spxcast.models.io import load_model

        try:
            info = self.registry.get(version)
            with tempfile.TemporaryDirectory(prefix="spxcast-serve-") as scratch:
                directory = self.registry.download(version, Path(scratch))
                model = load_model(directory, catalog=feature_catalog(self.settings))
                recorded = self._recorded(info.run_id, Path(scratch))
        except DeployRefused:
            raise
        except SpxcastError as exc:
            raise DeployRefused(f"cannot load {self.registry.name} v{version}: {exc}") from exc
        trained_with = model.metadata_.get("catalog_hash")  # type: ignore[attr-defined]
        running = self.fingerprint()
        if trained_with != running:
            raise DeployRefused(
                f"{self.registry.name} v{version} was trained with catalog {str(trained_with)[:16]}…, "
                f"the running catalog is {running[:16]}…; retrain it or deploy a matching version"
            )
        self.source.require(model.feature_names)
        column = info.candidate if info.candidate in recorded.columns else None
        if column is None:
            raise DeployRefused(
                f"{self.registry.name} v{version}: its recorded predictions have no column {info.candidate!r}"
            )
        replay(
            model,
            recorded.select("split", "ts", "actual", pl.col(column).alias("predicted")),
            self.source,
            self.settings.serving.replay_rows,
            f"{self.registry.name} v{version}",
        )
        conformal = calibrate(
            recorded.select("split", "actual", pl.col(column).alias("predicted")), self.settings
        )
        loaded = LoadedModel(
            model_name=self.registry.name,
            version=version,
            kind=model.kind,
            candidate=info.candidate,
            features=tuple(model.feature_names),
            model=model,
            conformal=conformal,
            loaded_at=datetime.now(UTC),
            aliases=tuple(info.aliases),
        )
        log.info(
            "loaded %s v%d (%s, %d features)", loaded.model_name, version, loaded.kind, len(loaded.features)
        )
        return loaded

    def _recorded(self, run_id: str, scratch: Path) -> pl.DataFrame:
        import mlflow.artifacts

        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=RECORDED_PREDICTIONS,
                dst_path=str(scratch / "recorded"),
                tracking_uri=self.settings.tracking_uri(),
            )
        except Exception as exc:  # MLflow raises several types for a missing artifact
            raise DeployRefused(
                f"MLflow run {run_id} has no {RECORDED_PREDICTIONS} to replay ({type(exc).__name__}); "
                "register the version again with a training run that records its predictions"
            ) from exc
        return pl.read_parquet(path)


def replay(model: Forecaster, recorded: pl.DataFrame, source: FeatureSource, rows: int, what: str) -> None:
    """Predict a sample of ``recorded`` (``split, ts, predicted``) through the serving feature path and
    require equality with the recorded predictions; raises DeployRefused naming the first difference."""
    usable = recorded.filter(pl.col("predicted").is_finite()).sort("ts")
    if usable.is_empty():
        raise DeployRefused(f"{what}: no recorded predictions to replay")
    picks = np.unique(np.linspace(0, usable.height - 1, min(rows, usable.height)).round().astype(int))
    sample = usable[picks]
    try:
        vectors = [r.vector(model.feature_names) for r in source.rows(source.instrument, sample["ts"])]
    except (NotFound, KeyError) as exc:
        raise DeployRefused(f"{what}: replay cannot find its recorded bars' inputs: {exc}") from exc
    served = model.predict_matrix(np.vstack(vectors))
    expected = sample["predicted"].to_numpy().astype(np.float64)
    differ = np.flatnonzero(~np.isclose(served, expected, rtol=REPLAY_RTOL, atol=0.0))
    if len(differ):
        first = int(differ[0])
        raise DeployRefused(
            f"{what}: replay of {len(expected)} recorded predictions found {len(differ)} different; first at "
            f"{sample['ts'][first].isoformat()}: recorded {expected[first]!r}, served {served[first]!r}"
        )


def calibrate(recorded: pl.DataFrame, settings: Settings) -> ConformalInterval | None:
    """Split conformal on the version's held-out (test split) residuals; None when there are too few."""
    held_out = recorded.filter(
        (pl.col("split") == CALIBRATION_SPLIT)
        & pl.col("predicted").is_finite()
        & pl.col("actual").is_finite()
    ).tail(settings.serving.calibration_rows)
    if held_out.height < MIN_CALIBRATION_ROWS:
        log.warning("only %d held-out predictions: no conformal interval", held_out.height)
        return None
    return ConformalInterval(
        held_out["predicted"].to_numpy(),
        held_out["actual"].to_numpy(),
        settings.serving.interval_level,
        settings.serving.aci_gamma,
    )
