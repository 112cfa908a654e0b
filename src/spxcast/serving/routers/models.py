"""GET /models, GET /models/history (promotions, rollbacks and deploys with gate results), GET
/models/{version}/metrics (the figures a version was registered and promoted on)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from spxcast.errors import SpxcastError
from spxcast.registry import audit
from spxcast.registry.store import model_name_of
from spxcast.serving import slots as slot_audit
from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import (
    ErrorResponse,
    ModelHistoryResponse,
    ModelsResponse,
    SlotChangeOut,
    SlotOut,
    TransitionOut,
    VersionMetricsResponse,
)
from spxcast.serving.slots import SLOTS

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsResponse)
def models(service: ServiceDep) -> ModelsResponse:
    """Champion and challenger in the registry; what each slot holds, traffic weights, shadow state."""
    snapshot = service.slots()
    aliases: dict[str, int | None] = {}
    error = None
    try:
        aliases = service.aliases()
    except SpxcastError as exc:
        error = str(exc)
    names = [m.model_name for m in snapshot.models.values() if m is not None]
    return ModelsResponse(
        model_name=names[0] if names else None,
        champion=aliases.get("champion"),
        challenger=aliases.get("challenger"),
        registry_error=error,
        live=snapshot.state.live,
        shadow=snapshot.state.shadow,
        slots=[
            SlotOut(
                slot=slot,
                version=snapshot.state.versions[slot],
                kind=None if (m := snapshot.models[slot]) is None else m.kind,
                live=slot == snapshot.state.live,
                weight=snapshot.state.weights[slot],
                loaded_at=None if m is None else m.loaded_at,
            )
            for slot in SLOTS
        ],
    )


@router.get("/models/history", response_model=ModelHistoryResponse)
def history(
    service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000, description="Newest rows of each")] = 100
) -> ModelHistoryResponse:
    """The audit trail, newest first: the registry's steps of this server's model (promotions, rollbacks,
    registrations, archivals with each promotion gate's result) and the serving slots' changes (deploys,
    swaps, rollbacks, weights, shadow) with the slot state after each; who, when and why for every row.
    Read from the app database (the same rows as ``spxcast models history``)."""
    name = model_name_of(service.settings)
    transitions = audit.history(service.engine, name)[::-1][:limit]
    return ModelHistoryResponse(
        model_name=name,
        transitions=[TransitionOut.model_validate(t, from_attributes=True) for t in transitions],
        slot_changes=[
            SlotChangeOut(at=c.at, action=c.action, actor=c.actor, reason=c.reason, **asdict(c.state))
            for c in slot_audit.history(service.engine, limit)
        ],
    )


@router.get(
    "/models/{version}/metrics",
    response_model=VersionMetricsResponse,
    responses={404: {"model": ErrorResponse, "description": "No such registered version"}},
)
def metrics(
    version: Annotated[int, Path(ge=1, description="A registered version")], service: ServiceDep
) -> VersionMetricsResponse:
    """The version's evaluation figures as logged with its training run (test and out-of-time splits, the
    model next to the baselines): the figures its promotion gates judged."""
    registry = service.loader.registry
    if version not in {v.version for v in registry.versions()}:
        raise HTTPException(404, f"{registry.name} has no version {version}")
    return VersionMetricsResponse(
        model_name=registry.name, version=version, metrics=registry.metrics(version)
    )
