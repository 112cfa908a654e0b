"""Registry task of the training DAG."""

from __future__ import annotations

from typing import Any

from spxcast.pipeline.context import TaskContext


def register_model(ctx: TaskContext) -> dict[str, Any]:
    """Log every candidate of this run to MLflow and register the selected one as challenger (Staging).

    Registers nothing (and says so) when ``select_model`` selected no candidate.
    """
    from spxcast.registry import register_run

    return register_run(ctx.settings, ctx.run_dir, ctx.run_id).to_dict()
