"""GET /predictions/history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import ErrorResponse, HistoryResponse, HistoryRow

router = APIRouter(tags=["predictions"])


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get(
    "/predictions/history",
    response_model=HistoryResponse,
    responses={404: {"model": ErrorResponse, "description": "Unknown instrument"}},
)
def history(
    service: ServiceDep,
    instrument: Annotated[str, Query(min_length=1, max_length=64)],
    start: Annotated[
        datetime | None, Query(alias="from", description="Bars starting at or after (UTC)")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Bars starting before (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    shadow: Annotated[bool, Query(description="Shadow predictions instead of served ones")] = False,
) -> HistoryResponse:
    """Logged predictions (oldest first) with the realised return once the horizon has passed."""
    rows = service.history(instrument, _utc(start), _utc(end), limit, shadow)
    return HistoryResponse(
        instrument=instrument,
        rows=[
            HistoryRow(
                prediction_id=r.prediction_id,
                created_at=_utc(r.created_at),  # type: ignore[arg-type]
                bar_ts=_utc(r.bar_ts),
                predicted_return_pct=r.predicted_pct,
                lower_pct=r.lower_pct,
                upper_pct=r.upper_pct,
                price=r.price,
                model_name=r.model_name,
                model_version=r.model_version,
                slot=r.slot,
                realised_return_pct=r.realised_pct,
            )
            for r in rows
        ],
    )
