"""Admin routes (behind X-Admin-Key): deploy, rollback, weights, shadow, and the audited changes."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from spxcast.serving.routers.deps import ActorDep, ServiceDep, require_admin
from spxcast.serving.schemas import (
    DeployRequest,
    ErrorResponse,
    ReasonRequest,
    ShadowRequest,
    SlotStateOut,
    WeightsRequest,
)
from spxcast.serving.slots import SlotState

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"model": ErrorResponse, "description": "No admin key"},
        403: {"model": ErrorResponse, "description": "Wrong admin key, or admin routes disabled"},
        409: {"model": ErrorResponse, "description": "Refused; the live slot is untouched"},
    },
)


def _out(state: SlotState) -> SlotStateOut:
    return SlotStateOut(live=state.live, versions=state.versions, weights=state.weights, shadow=state.shadow)


@router.post("/deploy", response_model=SlotStateOut)
def deploy(body: DeployRequest, service: ServiceDep, actor: ActorDep) -> SlotStateOut:
    """Load a registered version into the idle slot (fingerprint and replay checks), then swap to it."""
    return _out(service.deploy(body.version, actor, body.reason, body.swap))


@router.post("/rollback", response_model=SlotStateOut)
def rollback(body: ReasonRequest, service: ServiceDep, actor: ActorDep) -> SlotStateOut:
    """Make the idle slot (the previous version) live again."""
    return _out(service.rollback(actor, body.reason))


@router.post("/weights", response_model=SlotStateOut)
def weights(body: WeightsRequest, service: ServiceDep, actor: ActorDep) -> SlotStateOut:
    """Traffic shares per slot (A/B, sticky per client key)."""
    return _out(service.set_weights(body.weights, actor, body.reason))


@router.post("/shadow", response_model=SlotStateOut)
def shadow(body: ShadowRequest, service: ServiceDep, actor: ActorDep) -> SlotStateOut:
    """Shadow mode: the other slot scores every request (logged, never returned)."""
    return _out(service.set_shadow(body.enabled, actor, body.reason))
