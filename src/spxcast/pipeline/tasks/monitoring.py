"""Task of the ``monitoring`` DAG (hourly): one monitoring run."""

from __future__ import annotations

from functools import partial
from typing import Any

from spxcast.pipeline.context import TaskContext


def monitor(ctx: TaskContext) -> dict[str, Any]:
    """One monitoring run (:func:`spxcast.monitoring.service.run_monitoring`): checks, alerts, channels, and
    under the ``automatic`` policy the retrain loop.

    A retrain runs the ``training`` DAG as a child run of this task's run: under the runner this run holds
    the home's pipeline lock and waits on this task, so the child goes on under that hold
    (:func:`spxcast.pipeline.runner.exclusive_home`); under Airflow (``spxcast pipeline task monitor``) the
    child takes the lock itself, and is refused (recorded as ``blocked``, with the command) while another
    run holds it. The child run's id is in this task's outputs.
    """
    from spxcast.monitoring.service import auto_promote, retrain_now, run_monitoring

    summary = run_monitoring(
        ctx.settings, trainer=partial(retrain_now, parent=ctx.run_id), promoter=auto_promote
    )
    retrained = summary["retrain"]["result"] or {}
    promotion = summary["promotion"] or {}
    return {
        "monitoring_run": summary["run_id"],
        "drift_share": summary["drift_share"],
        "alerts_opened": len(summary["alerts_opened"]),
        "retrain": summary["retrain"]["action"],
        "training_run": retrained.get("training_run"),
        "challenger": retrained.get("challenger"),
        "shadow": (retrained.get("shadow") or {}).get("status"),
        "promoted": promotion.get("promoted"),
    }
