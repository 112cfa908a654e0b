"""GET /predictions/history."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import ErrorResponse, HistoryResponse, HistoryRow

router = APIRouter(tags=["predictions"])


NO_CALIBRATION = (
    "no interval: the version had no conformal calibration when it made this forecast (fewer than 20 "
    "held-out test predictions recorded)"
)
UNBOUNDED = (
    "{side} unbounded: after recent misses the adaptive conformal level (ACI) asked for more than 100 % "
    "coverage, so the interval served was the whole real line on this side"
)


def interval(lower: float | None, upper: float | None) -> tuple[float | None, float | None, str | None]:
    """The logged bounds as the wire carries them: finite bounds, null for an infinite or absent one, and
    the reason when a bound is null (JSON has no infinity; ACI serves infinite bounds after misses)."""
    if lower is None or upper is None:
        return None, None, NO_CALIBRATION
    sides = [name for name, bound in (("lower", lower), ("upper", upper)) if not math.isfinite(bound)]
    if not sides:
        return lower, upper, None
    note = UNBOUNDED.format(side=" and ".join(sides).capitalize())
    return (lower if math.isfinite(lower) else None), (upper if math.isfinite(upper) else None), note


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
    newest: Annotated[
        bool,
        Query(description="The newest `limit` rows of the range instead of the oldest (still oldest first)"),
    ] = False,
) -> HistoryResponse:
    """Logged predictions (oldest first) with the realised return once the horizon has passed; a null bound
    comes with ``interval_note`` saying why."""
    rows = service.history(instrument, _utc(start), _utc(end), limit, shadow, newest)
    return HistoryResponse(
        instrument=instrument,
        rows=[
            HistoryRow(
                prediction_id=r.prediction_id,
                created_at=_utc(r.created_at),  # type: ignore[arg-type]
                bar_ts=_utc(r.bar_ts),
                predicted_return_pct=r.predicted_pct,
                lower_pct=lower,
                upper_pct=upper,
                price=r.price,
                model_name=r.model_name,
                model_version=r.model_version,
                slot=r.slot,
                realised_return_pct=r.realised_pct,
                interval_note=note,
            )
            for r in rows
            for lower, upper, note in [interval(r.lower_pct, r.upper_pct)]
        ],
    )
