"""Task of the ``monitoring`` DAG (hourly): one monitoring run."""

from __future__ import annotations

from typing import Any

from spxcast.pipeline.context import TaskContext


def monitor(ctx: TaskContext) -> dict[str, Any]:
    """One monitoring run (:func:`spxcast.monitoring.service.run_monitoring`): checks, alerts, channels.

    Inside a pipeline run the home's pipeline lock is held, so an ``automatic`` retrain cannot start the
    training DAG here: the run records the request (``retrain.action = "train"``, result ``deferred``) and
    the next ``spxcast monitor run`` or scheduled training DAG acts on it.
    """
    from spxcast.monitoring.service import run_monitoring

    summary = run_monitoring(ctx.settings, trainer=None)
    return {
        "monitoring_run": summary["run_id"],
        "drift_share": summary["drift_share"],
        "alerts_opened": len(summary["alerts_opened"]),
        "retrain": summary["retrain"]["action"],
    }
