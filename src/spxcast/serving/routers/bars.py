"""GET /bars (read-only): the newest stored bars of the served series, for charts (the dashboard)."""

from __future__ import annotations

from datetime import UTC, datetime
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
    end: Annotated[
        datetime | None, Query(alias="to", description="Only bars starting before (UTC; default: all)")
    ] = None,
) -> BarsResponse:
    """The newest ``limit`` bars of bronze.candles (oldest first), starting before ``to`` when given; ts =
    bar start (UTC), mid prices."""
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return BarsResponse(
        instrument=instrument,
        granularity=service.settings.granularity,
        bars=[BarOut(**row) for row in service.bars(instrument, limit, end)],
    )
