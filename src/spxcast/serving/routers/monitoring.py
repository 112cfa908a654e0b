"""GET /monitoring/latest, GET /monitoring/report, GET /alerts, POST /alerts/{id}/ack|resolve (admin)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from spxcast.monitoring import service as monitoring
from spxcast.serving.routers.deps import ActorDep, ServiceDep, require_admin
from spxcast.serving.schemas import ErrorResponse
from spxcast.serving.service import ServingService

log = logging.getLogger(__name__)
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


_ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No admin key"},
    403: {"model": ErrorResponse, "description": "Wrong admin key, or admin routes disabled"},
    404: {"model": ErrorResponse, "description": "No alert with this id"},
    409: {"model": ErrorResponse, "description": "Already resolved, or already acknowledged"},
}
AlertId = Annotated[int, PathParam(ge=1, description="The alert's id (GET /alerts)")]


def _set_status(service: ServingService, alert_id: int, status: str, actor: str) -> dict[str, Any]:
    """The library call of ``spxcast monitor alerts ack|resolve``; who and when are recorded on the alert."""
    try:
        alert = monitoring.set_status(service.engine, alert_id, status, actor, datetime.now(UTC))
    except monitoring.AlertNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except monitoring.AlertConflict as exc:
        raise HTTPException(409, str(exc)) from None
    log.info("alert %d (%s) %s by %s through the API", alert_id, alert["key"], status, actor)
    return alert


@router.post("/alerts/{alert_id}/ack", dependencies=[Depends(require_admin)], responses=_ADMIN_RESPONSES)
def acknowledge(alert_id: AlertId, service: ServiceDep, actor: ActorDep) -> dict[str, Any]:
    """Acknowledge an open alert (X-Admin-Key; X-Actor is recorded): it stays active, and no new alert is
    raised for its condition while it is."""
    return _set_status(service, alert_id, "acknowledged", actor)


@router.post("/alerts/{alert_id}/resolve", dependencies=[Depends(require_admin)], responses=_ADMIN_RESPONSES)
def resolve(alert_id: AlertId, service: ServiceDep, actor: ActorDep) -> dict[str, Any]:
    """Resolve an alert by hand (X-Admin-Key; X-Actor is recorded)."""
    return _set_status(service, alert_id, "resolved", actor)
