"""Logging training runs to MLflow tracking: params, metrics for every split and baseline, the evaluation
report, the lineage and the model directory.

Metric keys: ``<split>.<metric>`` for the candidate, ``<split>.<baseline>.<metric>`` for a baseline
(``test.rmse``, ``test.zero.rmse``, ``oot.dm_pvalue``). Artifacts: ``model/`` (the saved model directory),
``evaluation/`` (``evaluation.json``; ``predictions.parquet``; ``report/`` with the HTML report and its
plots), ``lineage.json``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spxcast.registry.handoff import MODEL, Candidate, Metrics
from spxcast.registry.lineage import Lineage

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

TAG_CANDIDATE = "spxcast.candidate"
TAG_PIPELINE_RUN = "spxcast.pipeline_run_id"
TAG_SELECTED = "spxcast.selected"
TAG_MODEL_SHA = "spxcast.model_sha256"
TAG_REPORT = "spxcast.report"
MODEL_ARTIFACT = "model"
REPORT_ARTIFACT = "evaluation/report"

_PARAM_LIMIT = 6000
_BATCH = 100


def metric_key(split: str, predictor: str, metric: str) -> str:
    return f"{split}.{metric}" if predictor == MODEL else f"{split}.{predictor}.{metric}"


def flatten_metrics(metrics: Metrics) -> dict[str, float]:
    return {
        metric_key(split, predictor, metric): value
        for split, by_predictor in metrics.items()
        for predictor, values in by_predictor.items()
        for metric, value in values.items()
    }


def metrics_from_keys(flat: dict[str, float]) -> Metrics:
    """Inverse of :func:`flatten_metrics`."""
    result: Metrics = {}
    for key, value in flat.items():
        parts = key.split(".")
        if len(parts) == 2:
            split, predictor, metric = parts[0], MODEL, parts[1]
        elif len(parts) == 3:
            split, predictor, metric = parts
        else:
            continue
        result.setdefault(split, {}).setdefault(predictor, {})[metric] = value
    return result


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as ``a.b`` keys with string values (MLflow params are strings, <= 6000 chars)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name] = text[:_PARAM_LIMIT]
    return flat


def find_run(client: MlflowClient, experiment_id: str, pipeline_run_id: str, candidate: str) -> str | None:
    """The finished MLflow run already logged for this candidate of this pipeline run (a resumed run)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{TAG_PIPELINE_RUN}` = '{pipeline_run_id}' and tags.`{TAG_CANDIDATE}` = '{candidate}' "
            "and attributes.status = 'FINISHED'"
        ),
        max_results=1,
    )
    return str(runs[0].info.run_id) if runs else None


def log_candidate(
    client: MlflowClient,
    experiment_id: str,
    candidate: Candidate,
    lineage: Lineage,
    selected: bool,
) -> str:
    """Log one candidate as an MLflow run (or return the run already logged for it); returns the run id."""
    from mlflow.entities import Metric, Param

    existing = find_run(client, experiment_id, lineage.pipeline_run_id, candidate.name)
    if existing is not None:
        return existing
    tags = {
        "mlflow.runName": f"{candidate.name}-{lineage.pipeline_run_id}",
        TAG_CANDIDATE: candidate.name,
        TAG_PIPELINE_RUN: lineage.pipeline_run_id,
        TAG_SELECTED: str(selected).lower(),
        TAG_MODEL_SHA: lineage.model_sha256,
        "spxcast.code_version": lineage.code_version,
        "spxcast.git_commit": lineage.git_commit or "unknown",
    }
    run = client.create_run(experiment_id, tags=tags)
    run_id = str(run.info.run_id)
    try:
        params = {
            **flatten_params(candidate.params, "candidate."),
            **flatten_params(lineage.training_config, "config."),
        }
        params["lake_versions"] = json.dumps(lineage.lake_versions, sort_keys=True)
        params["n_features"] = str(len(lineage.features))
        items = [Param(k, v) for k, v in sorted(params.items())]
        for start in range(0, len(items), _BATCH):
            client.log_batch(run_id, params=items[start : start + _BATCH])
        now_ms = int(time.time() * 1000)
        metrics = [Metric(k, v, now_ms, 0) for k, v in sorted(flatten_metrics(candidate.metrics).items())]
        for start in range(0, len(metrics), _BATCH * 10):
            client.log_batch(run_id, metrics=metrics[start : start + _BATCH * 10])
        client.log_artifacts(run_id, str(candidate.model_dir), MODEL_ARTIFACT)
        client.log_artifact(run_id, str(candidate.directory / "evaluation.json"), "evaluation")
        predictions = candidate.directory / "predictions.parquet"
        if predictions.is_file():  # replayed by serving at deploy, and its held-out residuals calibrate it
            client.log_artifact(run_id, str(predictions), "evaluation")
        if candidate.report is not None:
            client.log_artifacts(run_id, str(candidate.report.parent), REPORT_ARTIFACT)
            client.set_tag(run_id, TAG_REPORT, f"{REPORT_ARTIFACT}/{candidate.report.name}")
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "lineage.json"
            path.write_text(lineage.to_json())
            client.log_artifact(run_id, str(path))
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    log.info("logged candidate %s of %s as MLflow run %s", candidate.name, lineage.pipeline_run_id, run_id)
    return run_id
