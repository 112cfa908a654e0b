"""Reproduction of a registered version from its lineage: the same lake table versions (Delta time
travel), the same configuration and seed, the same candidate — and the predictions must be identical."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spxcast.config import FeatureSettings, Settings, TrainingSettings
from spxcast.errors import RegistryError
from spxcast.lake import Lake
from spxcast.lake.tables import GOLD_FEATURES
from spxcast.registry.lifecycle import ModelRegistry
from spxcast.registry.lineage import Lineage, verify_lake_versions

GOLD = GOLD_FEATURES.name


@dataclass(frozen=True)
class Reproduction:
    """Registered versus retrained predictions on every labelled row of the recorded gold version."""

    version: int
    candidate: str
    lake_versions: dict[str, int]
    rows: int
    max_abs_difference: float
    features_match: bool

    @property
    def identical(self) -> bool:
        return self.features_match and self.max_abs_difference == 0.0


def lineage_settings(settings: Settings, lineage: Lineage) -> Settings:
    """``settings`` with the instrument, bars, horizon, seed, training and feature sections of ``lineage``."""
    config = lineage.training_config
    return settings.model_copy(
        update={
            "instrument": lineage.instrument,
            "granularity": lineage.granularity,
            "horizon_minutes": lineage.horizon_minutes,
            "horizon_bars": config.get("horizon_bars"),
            "calendar": config.get("calendar", "auto"),
            "seed": int(lineage.seeds.get("seed", config.get("seed", settings.seed))),
            "training": TrainingSettings.model_validate(config["training"]),
            "features": FeatureSettings.model_validate(config["features"]),
        }
    )


def reproduce_version(registry: ModelRegistry, version: int) -> Reproduction:
    """Retrain ``version`` from its lineage and compare its predictions with the registered model's.

    Raises :class:`RegistryError` when the lineage is missing or names lake versions that no longer load.
    """
    from spxcast.features.catalog import NEWS_GROUP, feature_catalog
    from spxcast.models.train import TrainingSpec, labelled_frame, train_candidate, without_absent_news

    lineage = registry.get(version).lineage
    if lineage is None:
        raise RegistryError(f"{registry.name} v{version} has no lineage record; it cannot be reproduced")
    if GOLD not in lineage.lake_versions:
        raise RegistryError(
            f"lineage of {registry.name} v{version} names no {GOLD} version: {lineage.lake_versions}"
        )
    lake = Lake.from_settings(registry.settings)
    verify_lake_versions(lake, lineage)
    settings = lineage_settings(registry.settings, lineage)
    gold = lake.series(GOLD, settings.instrument, settings.granularity, lineage.lake_versions[GOLD]).collect()
    catalog = feature_catalog(settings)
    features, news_features = without_absent_news(gold, catalog.names(), catalog.names(NEWS_GROUP))
    spec = TrainingSpec.from_settings(
        settings,
        lineage.candidate,
        features,
        news_features,
        study_prefix=f"reproduce-{uuid.uuid4().hex}",
    )
    retrained = train_candidate(gold, spec).model
    frame = labelled_frame(gold, spec)
    with tempfile.TemporaryDirectory() as scratch:
        registered = registry.load(version, Path(scratch))
    ours = np.asarray(registered.predict(frame), dtype=np.float64)
    theirs = np.asarray(retrained.predict(frame), dtype=np.float64)
    same_nan = bool(np.array_equal(np.isnan(ours), np.isnan(theirs)))
    finite = ~np.isnan(ours) & ~np.isnan(theirs)
    difference = (
        float(np.max(np.abs(ours[finite] - theirs[finite]), initial=0.0)) if same_nan else float("inf")
    )
    return Reproduction(
        version=version,
        candidate=lineage.candidate,
        lake_versions=dict(lineage.lake_versions),
        rows=frame.height,
        max_abs_difference=difference,
        features_match=list(retrained.feature_names) == list(lineage.features),
    )
