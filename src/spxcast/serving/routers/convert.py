"""Domain objects to wire schemas."""

from __future__ import annotations

from spxcast.serving.explain import Explanation
from spxcast.serving.loading import LoadedModel
from spxcast.serving.schemas import ExplanationOut, IntervalOut, ModelOut, PredictResponse
from spxcast.serving.service import Prediction


def model_out(model: LoadedModel) -> ModelOut:
    return ModelOut(
        name=model.model_name,
        version=model.version,
        kind=model.kind,
        candidate=model.candidate,
        aliases=list(model.aliases),
    )


def explanation_out(explanation: Explanation) -> ExplanationOut:
    return ExplanationOut(
        method=explanation.method, base_pct=explanation.base, contributions_pct=explanation.contributions
    )


def prediction_out(p: Prediction) -> PredictResponse:
    interval = None
    if p.level is not None and p.lower_pct is not None and p.upper_pct is not None:
        interval = IntervalOut(
            level=p.level,
            lower_pct=p.lower_pct,
            upper_pct=p.upper_pct,
            lower_price=p.price_at(p.lower_pct),
            upper_price=p.price_at(p.upper_pct),
        )
    return PredictResponse(
        prediction_id=p.prediction_id,
        instrument=p.instrument,
        predicted_return_pct=p.predicted_pct,
        price=p.price,
        predicted_price=p.price_at(p.predicted_pct),
        direction=p.direction,  # type: ignore[arg-type]
        interval=interval,
        model=model_out(p.model),
        slot=p.slot,
        bar_ts=p.bar_ts,
        feature_as_of=p.feature_as_of,
        horizon_minutes=p.horizon_minutes,
        explanation=None if p.explanation is None else explanation_out(p.explanation),
    )
