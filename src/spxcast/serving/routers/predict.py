"""POST /predict."""

from __future__ import annotations

from fastapi import APIRouter

from spxcast.serving.routers.convert import prediction_out
from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import ErrorResponse, PredictRequest, PredictResponse

router = APIRouter(tags=["predict"])

_ERRORS = {
    404: {"model": ErrorResponse, "description": "Unknown instrument or bar"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    503: {"model": ErrorResponse, "description": "No model can answer"},
}


@router.post("/predict", response_model=PredictResponse, responses=_ERRORS)  # type: ignore[arg-type]
async def predict(body: PredictRequest, service: ServiceDep) -> PredictResponse:
    """Forecast the return over the horizon from the newest closed bar, bar ``ts``, or explicit features."""
    return prediction_out(
        service.predict(body.instrument, body.ts, body.features, body.client_key, body.explain)
    )
