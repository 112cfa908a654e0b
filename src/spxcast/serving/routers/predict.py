"""POST /predict: the hot route.

It reads the body bytes itself and validates them with the request schema's own JSON validator, and answers
with bytes from the response schema's own serializer (the response is still built, and so validated, as a
:class:`PredictResponse`). That skips FastAPI's generic body solving (content-type parsing, ``json.loads``,
dependency resolution) and its second validation of the returned model, about a third of the route's CPU
per request. The OpenAPI document describes both schemas as before, and a body that does not validate is
the same 422 (through the app's one handler, locations prefixed with ``body``) as on every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from spxcast.serving.routers.convert import prediction_out
from spxcast.serving.routers.deps import get_service
from spxcast.serving.schemas import ErrorResponse, PredictRequest, PredictResponse

router = APIRouter(tags=["predict"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown instrument or bar"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    503: {"model": ErrorResponse, "description": "No model can answer"},
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}
_SERIALIZE = PredictResponse.__pydantic_serializer__.to_json


@router.post("/predict", response_model=PredictResponse, responses=_ERRORS, openapi_extra=_BODY)
async def predict(request: Request) -> Response:
    """Forecast the return over the horizon from the newest closed bar, bar ``ts``, or explicit features."""
    try:
        body = PredictRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    service = await get_service(request)
    prediction = service.predict(body.instrument, body.ts, body.features, body.client_key, body.explain)
    return Response(_SERIALIZE(prediction_out(prediction)), media_type="application/json")
