"""GET /monitoring/latest, GET /monitoring/report, GET /alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse

from spxcast.monitoring import service as monitoring
from spxcast.serving.routers.deps import ServiceDep

router = APIRouter(tags=["monitoring"])


@router.get("/monitoring/latest")
def latest(request: Request) -> dict[str, Any]:
    """The newest monitoring run's summary (drift, realised skill, freshness, alerts, retrain decision);
    ``report_url`` links its HTML drift report."""
    summary = monitoring.latest(request.app.state.settings)
    if summary is None:
        raise HTTPException(404, "no monitoring run yet: run `spxcast monitor run` or the monitoring DAG")
    return {**summary, "report_url": "/monitoring/report" if summary.get("report") else None}


@router.get("/monitoring/report", response_class=FileResponse)
def report(request: Request) -> FileResponse:
    """The HTML drift report of the newest monitoring run (Evidently)."""
    summary = monitoring.latest(request.app.state.settings)
    path = Path(summary["report"]) if summary and summary.get("report") else None
    if path is None or not path.exists():
        raise HTTPException(404, "the newest monitoring run has no report")
    return FileResponse(path, media_type="text/html")


@router.get("/alerts")
def alerts(
    service: ServiceDep,
    status: Literal["open", "acknowledged", "resolved"] | None = Query(None, description="Only this status"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Monitoring alerts, newest first."""
    return monitoring.list_alerts(service.engine, status, limit)
