"""GET /bars (read-only): the newest stored bars of the served series, for charts (the dashboard)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import BarOut, BarsResponse, ErrorResponse

router = APIRouter(tags=["bars"])


@router.get(
    "/bars",
    response_model=BarsResponse,
    responses={404: {"model": ErrorResponse, "description": "Unknown instrument"}},
)
def bars(
    service: ServiceDep,
    instrument: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> BarsResponse:
    """The newest ``limit`` bars of bronze.candles (oldest first); ts = bar start (UTC), mid prices."""
    return BarsResponse(
        instrument=instrument,
        granularity=service.settings.granularity,
        bars=[BarOut(**row) for row in service.bars(instrument, limit)],
    )
