"""Registration of a pipeline run: log every candidate to MLflow, register the selected one as challenger."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spxcast import __version__
from spxcast.config import Settings
from spxcast.features.catalog import feature_catalog
from spxcast.registry.handoff import Candidate, Selection, candidate_names, read_candidate, read_selection
from spxcast.registry.lifecycle import ModelRegistry
from spxcast.registry.lineage import Lineage, directory_sha256, git_commit, training_config
from spxcast.registry.tracking import log_candidate
from spxcast.registry.window import ModelLoader, default_loader

log = logging.getLogger(__name__)

MODEL_METADATA = "metadata.json"
"""The metadata file ``spxcast.models.io.save_model`` writes next to the model."""


@dataclass(frozen=True)
class RegistrationResult:
    """What ``register_run`` did. ``version`` is ``None`` when nothing was selected (no skill)."""

    model_name: str
    selected: str | None
    version: int | None
    created: bool
    runs: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "selected": self.selected,
            "version": self.version,
            "created": self.created,
            "mlflow_runs": self.runs,
            "message": self.message,
        }


def build_lineage(
    settings: Settings, candidate: Candidate, selection: Selection, pipeline_run_id: str, loader: ModelLoader
) -> Lineage:
    """The lineage record of ``candidate``: its features (from the saved model), the lake versions and
    split boundaries training recorded, the code version, seeds and configuration."""
    model = loader(candidate.model_dir)
    metadata_file = candidate.model_dir / MODEL_METADATA
    metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    return Lineage(
        instrument=settings.instrument,
        granularity=settings.granularity,
        horizon_minutes=settings.horizon_minutes,
        candidate=candidate.name,
        pipeline_run_id=pipeline_run_id,
        features=tuple(model.feature_names),
        lake_versions=dict(selection.lake_versions),
        code_version=__version__,
        git_commit=git_commit(),
        seeds={"seed": int(metadata.get("seed", settings.seed))},
        split_boundaries=dict(selection.split_boundaries),
        training_config=training_config(settings),
        # metadata.json names the pipeline run, so it differs between runs that fit the same model.
        model_sha256=directory_sha256(candidate.model_dir, exclude=(MODEL_METADATA,)),
        extra={
            k: metadata[k] for k in ("training_window", "library_versions", "catalog_hash") if k in metadata
        },
    )


def register_run(
    settings: Settings, run_dir: Path, pipeline_run_id: str, actor: str | None = None
) -> RegistrationResult:
    """Log every candidate of ``run_dir`` as an MLflow run and register the selected one as challenger.

    When selection chose nothing (no candidate beat the zero forecast), nothing is registered and the
    result says why.
    """
    load = default_loader(feature_catalog(settings))
    selection = read_selection(run_dir)
    registry = ModelRegistry(settings)
    experiment = registry.experiment_id()
    runs: dict[str, str] = {}
    lineages: dict[str, Lineage] = {}
    for name in candidate_names(run_dir):
        candidate = read_candidate(run_dir, name)
        lineages[name] = build_lineage(settings, candidate, selection, pipeline_run_id, load)
        runs[name] = log_candidate(
            registry.client, experiment, candidate, lineages[name], selected=name == selection.selected
        )
    if selection.selected is None:
        reasons = "; ".join(f"{k}: {v}" for k, v in selection.reasons.items()) or "no reasons recorded"
        message = f"no candidate selected (no skill over the zero forecast), nothing registered: {reasons}"
        log.warning(message)
        return RegistrationResult(registry.name, None, None, False, runs, message)
    if selection.selected not in runs:
        from spxcast.errors import RegistryError

        raise RegistryError(
            f"selection names {selection.selected!r} but {run_dir / 'candidates'} "
            f"holds {sorted(runs) or 'nothing'}"
        )
    info, created = registry.register(runs[selection.selected], lineages[selection.selected], actor)
    message = (
        f"registered {selection.selected} as {registry.name} v{info.version} (challenger)"
        if created
        else f"{selection.selected} is identical to {registry.name} v{info.version} ({info.stage}); "
        "not registered again"
    )
    return RegistrationResult(registry.name, selection.selected, info.version, created, runs, message)
