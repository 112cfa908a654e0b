"""GET /health (process alive), GET /ready (able to serve), GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """The process is alive (no dependency is checked)."""
    return HealthResponse(status="ok")


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(service: ServiceDep) -> JSONResponse:
    """A model is loaded in the live slot, the feature source has rows, and the prediction log takes rows."""
    problems = service.problems()
    body = ReadyResponse(ready=not problems, problems=problems).model_dump()
    return JSONResponse(body, status_code=503 if problems else 200)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, service: ServiceDep) -> Response:
    """Prometheus text format: latency per route, predictions per slot, errors, log queue, versions."""
    payload = request.app.state.telemetry.export(service.log.depth(), service.log.spooled)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
