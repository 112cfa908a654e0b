"""The MLflow tracking store and model registry behind spxcast: URIs, names, aliases, lifecycle states.

MLflow 3 deprecated stages, so the lifecycle None -> Staging -> Production -> Archived is a model-version
tag (``spxcast.lifecycle``); the aliases ``champion`` (what serves), ``challenger`` (the registered
candidate waiting for promotion) and ``previous_champion`` (the one-step rollback target) point at versions.
"""

from __future__ import annotations

import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from spxcast.config import Settings
from spxcast.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"

LIFECYCLE_TAG = "spxcast.lifecycle"


class Stage(StrEnum):
    """Lifecycle state of a registered version (kept as the ``spxcast.lifecycle`` tag)."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


def registered_model_name(
    instrument: str, granularity: str, horizon_minutes: int, horizon_bars: int | None = None
) -> str:
    """One registered model per instrument, bar size and horizon: ``spxcast-SPX500_USD-30m`` for M1 bars,
    ``spxcast-SPX500_USD-M5-30m`` for other bar sizes, ``spxcast-SPX-D-1b`` for a horizon in bars."""
    bars = "" if granularity == "M1" else f"-{granularity}"
    horizon = f"{horizon_minutes}m" if horizon_bars is None else f"{horizon_bars}b"
    return f"spxcast-{instrument}{bars}-{horizon}"


def model_name_of(settings: Settings) -> str:
    return registered_model_name(
        settings.instrument, settings.granularity, settings.horizon_minutes, settings.horizon_bars
    )


def _prepare_local_store(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def mlflow_client(settings: Settings) -> MlflowClient:
    """A client on the tracking store and registry of ``settings`` (the same URI for both)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = settings.tracking_uri()
    try:
        _prepare_local_store(uri)
    except OSError as exc:
        raise RegistryError(f"MLflow store at {_masked(uri)} cannot be created: {exc}") from exc
    # MLflow logs every store migration at INFO, draws download progress bars and, with a tracking server,
    # writes each finished run's URL on stdout (where --json output goes); spxcast reports itself.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow reads its HTTP client limits from the environment (its default retries for minutes).
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.registry.http_max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(settings.registry.http_timeout_s))
    logging.getLogger("mlflow").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
    except MlflowException as exc:
        raise RegistryError(f"MLflow store at {_masked(uri)} is not usable: {_masked(exc.message)}") from exc
    except Exception as exc:
        raise RegistryError(f"MLflow store at {_masked(uri)} is not reachable: {_masked(str(exc))}") from exc
    return client


def experiment_id(client: MlflowClient, settings: Settings) -> str:
    """The id of the configured experiment, created with its artifacts under the artifact root (with a
    tracking server and no artifact root, in the server's artifact store)."""
    from mlflow.exceptions import MlflowException

    name = settings.registry.experiment
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    root = settings.mlflow_artifact_root()
    if root is not None and "://" not in root:
        Path(root).mkdir(parents=True, exist_ok=True)
    location = None if root is None else f"{root.rstrip('/')}/{name}"  # None: the server's artifact store
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # Another process created it between the lookup and the create.
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def _masked(uri: str) -> str:
    from spxcast.config import mask_secrets

    return str(mask_secrets(uri))
