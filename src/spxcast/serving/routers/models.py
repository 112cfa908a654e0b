"""GET /models."""

from __future__ import annotations

from fastapi import APIRouter

from spxcast.errors import SpxcastError
from spxcast.serving.routers.deps import ServiceDep
from spxcast.serving.schemas import ModelsResponse, SlotOut
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
