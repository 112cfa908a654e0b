"""Wire schemas of the API (pydantic), separate from the domain types of ``spxcast.serving.service``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Strict):
    instrument: str = Field(min_length=1, max_length=64, examples=["SPX500_USD"])
    ts: datetime | None = Field(
        default=None,
        description="Start (UTC) of the bar to predict at its close; default the newest closed bar",
    )
    features: dict[str, float | None] | None = Field(
        default=None,
        max_length=2000,
        description="An explicit input vector {feature: value} instead of a bar",
    )
    explain: bool = Field(default=False, description="Also return per-feature contributions")
    client_key: str | None = Field(
        default=None, max_length=256, description="Sticky A/B routing key (a user or session id)"
    )


class IntervalOut(_Strict):
    level: float = Field(description="Nominal coverage, e.g. 0.9")
    lower_pct: float
    upper_pct: float
    lower_price: float | None
    upper_price: float | None
    method: str = "split conformal, adaptive (ACI), MAPIE"


class ModelOut(_Strict):
    name: str
    version: int
    kind: str
    candidate: str
    aliases: list[str]


class ExplanationOut(_Strict):
    method: str
    base_pct: float = Field(description="Expected value (tree models) or intercept (AR), percent")
    contributions_pct: dict[str, float] = Field(description="Per feature, percent; base + sum = prediction")


class PredictResponse(_Strict):
    prediction_id: str
    instrument: str
    predicted_return_pct: float = Field(description="Forecast return over the horizon, percent")
    price: float | None = Field(description="Close of the bar the forecast is made at")
    predicted_price: float | None
    direction: Literal["up", "down", "flat"]
    interval: IntervalOut | None
    model: ModelOut
    slot: str
    bar_ts: datetime | None = Field(description="Start (UTC) of the bar; null for explicit features")
    feature_as_of: datetime | None = Field(description="When the inputs were known (the bar's close)")
    horizon_minutes: int
    explanation: ExplanationOut | None = None


class ExplainResponse(_Strict):
    prediction_id: str
    predicted_return_pct: float
    model: ModelOut
    explanation: ExplanationOut


class HistoryRow(_Strict):
    prediction_id: str
    created_at: datetime
    bar_ts: datetime | None
    predicted_return_pct: float
    lower_pct: float | None
    upper_pct: float | None
    price: float | None
    model_name: str
    model_version: int
    slot: str
    realised_return_pct: float | None = Field(description="Null until the horizon has passed")
    interval_note: str | None = Field(
        default=None,
        description="Why a bound is null: no calibration for the version, or unbounded (adaptive ACI level "
        "at 100 %); null when both bounds are given",
    )


class HistoryResponse(_Strict):
    instrument: str
    rows: list[HistoryRow]


class BarOut(_Strict):
    ts: datetime = Field(description="Bar start (UTC)")
    open: float
    high: float
    low: float
    close: float
    volume: int | None


class BarsResponse(_Strict):
    instrument: str
    granularity: str
    bars: list[BarOut] = Field(description="Oldest first")


class NewsItem(_Strict):
    article_id: str
    received_at: datetime
    title: str
    url: str
    score: float | None
    scorer: str


class NewsResponse(_Strict):
    items: list[NewsItem]


class SlotOut(_Strict):
    slot: str
    version: int | None
    kind: str | None
    live: bool
    weight: float
    loaded_at: datetime | None


class ModelsResponse(_Strict):
    model_name: str | None
    champion: int | None
    challenger: int | None
    registry_error: str | None
    live: str
    shadow: bool
    slots: list[SlotOut]


class HealthResponse(_Strict):
    status: Literal["ok"]


class ReadyResponse(_Strict):
    ready: bool
    problems: list[str]


class DeployRequest(_Strict):
    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)
    swap: bool = Field(default=True, description="Make it live (false: load into the idle slot only)")


class ReasonRequest(_Strict):
    reason: str = Field(min_length=1, max_length=2000)


class WeightsRequest(_Strict):
    weights: dict[str, float] = Field(max_length=2, examples=[{"blue": 0.8, "green": 0.2}])
    reason: str = Field(min_length=1, max_length=2000)


class ShadowRequest(_Strict):
    enabled: bool
    reason: str = Field(min_length=1, max_length=2000)


class SlotStateOut(_Strict):
    live: str
    versions: dict[str, int | None]
    weights: dict[str, float]
    shadow: bool


class ErrorResponse(_Strict):
    error: str
    detail: str | list[dict[str, object]]


class GateOut(_Strict):
    name: str
    passed: bool
    figure: str = Field(description="What was required and what the version scored")


class TransitionOut(_Strict):
    """One audited registry step of a version (register, promote, rollback, archive, approve, supersede)."""

    at: datetime
    version: int
    action: str
    from_state: str
    to_state: str
    actor: str
    reason: str
    forced: bool = Field(description="Failing gates overridden (audited)")
    gates: list[GateOut] | None = Field(
        description="The promotion gates at that moment (null: not evaluated)"
    )


class SlotChangeOut(SlotStateOut):
    """One audited change of the serving slots (deploy, swap, rollback, weights, shadow), state after it."""

    at: datetime
    action: str
    actor: str
    reason: str


class ModelHistoryResponse(_Strict):
    model_name: str
    transitions: list[TransitionOut] = Field(description="Registry steps, newest first")
    slot_changes: list[SlotChangeOut] = Field(description="Serving deploys and rollbacks, newest first")


class VersionMetricsResponse(_Strict):
    model_name: str
    version: int
    metrics: dict[str, dict[str, dict[str, float]]] = Field(
        description="metrics[split][predictor][metric] as logged with the version's training run; predictor "
        "is 'model' or a baseline (zero, mean, persistence); returns in percent"
    )
