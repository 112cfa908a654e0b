"""GET /explain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from spxcast.serving.routers.convert import explanation_out, model_out
from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import ErrorResponse, ExplainResponse

router = APIRouter(tags=["predict"])


@router.get(
    "/explain",
    response_model=ExplainResponse,
    responses={404: {"model": ErrorResponse, "description": "Unknown prediction id"}},
)
def explain(
    prediction_id: Annotated[str, Query(min_length=1, max_length=64)], service: ServiceDep
) -> ExplainResponse:
    """Per-feature contributions of a logged prediction (TreeSHAP for trees, coef × value for AR)."""
    model, predicted, explanation = service.explain(prediction_id)
    return ExplainResponse(
        prediction_id=prediction_id,
        predicted_return_pct=predicted,
        model=model_out(model),
        explanation=explanation_out(explanation),
    )
