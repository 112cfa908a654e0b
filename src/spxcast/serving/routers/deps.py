"""Dependencies shared by the routers: the service of the app, and the admin key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from spxcast.serving.service import ServingService


async def get_service(request: Request) -> ServingService:
    # async: FastAPI would run a plain function in its thread pool, a thread hop on every request.
    service: ServingService = request.app.state.service
    return service


ServiceDep = Annotated[ServingService, Depends(get_service)]


def require_admin(
    request: Request,
    x_admin_key: Annotated[str | None, Header(description="The admin API key")] = None,
) -> None:
    """401 without a key, 403 with a wrong one; with no key configured the admin routes are disabled."""
    configured = request.app.state.settings.serving.admin_key
    if configured is None or not configured.get_secret_value():
        raise HTTPException(403, "admin routes are disabled: no SPXCAST_SERVING__ADMIN_KEY is configured")
    if not x_admin_key:
        raise HTTPException(
            401, "admin routes need the X-Admin-Key header", {"WWW-Authenticate": "X-Admin-Key"}
        )
    if not hmac.compare_digest(x_admin_key.encode(), configured.get_secret_value().encode()):
        raise HTTPException(403, "the X-Admin-Key given is not the configured admin key")


def actor(
    x_actor: Annotated[str | None, Header(max_length=256, description="Who acts (audited)")] = None,
) -> str:
    return x_actor or "admin-api"


ActorDep = Annotated[str, Depends(actor)]
