"""The audit trail of registered versions in the app database (table ``model_transitions``)."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from spxcast.config import Settings
from spxcast.db import ModelTransition


@dataclass(frozen=True)
class Transition:
    """One audited step: who moved which version from which state to which, when and why."""

    model_name: str
    version: int
    action: str
    from_state: str
    to_state: str
    actor: str
    reason: str
    forced: bool
    gates: list[dict[str, Any]] | None
    at: datetime


def actor_of(settings: Settings, explicit: str | None = None) -> str:
    """Who acts: an explicit name, else ``registry.actor``, else the OS user."""
    if explicit:
        return explicit
    if settings.registry.actor:
        return settings.registry.actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record(engine: Engine, transition: Transition) -> None:
    gates = None if transition.gates is None else json.dumps(transition.gates)
    with Session(engine) as session, session.begin():
        session.add(ModelTransition(**{**asdict(transition), "gates": gates}))


def history(engine: Engine, model_name: str, version: int | None = None) -> list[Transition]:
    """Transitions of a registered model (or one version), oldest first; times in UTC."""
    query = select(ModelTransition).where(ModelTransition.model_name == model_name)
    if version is not None:
        query = query.where(ModelTransition.version == version)
    with Session(engine) as session:
        rows = session.scalars(query.order_by(ModelTransition.id)).all()
        return [
            replace(
                Transition(**{f.name: getattr(row, f.name) for f in fields(Transition)}),
                gates=json.loads(row.gates) if row.gates else None,
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),  # SQLite drops the zone
            )
            for row in rows
        ]
