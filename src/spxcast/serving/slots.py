"""Blue/green slots: which version each slot holds, which one is live, traffic weights, shadow mode.

:class:`SlotState` is immutable; a change builds a new state and the service swaps one reference (atomic
under the GIL), so a request always sees one consistent state and none fails during a swap. Every change is
audited in the app database (``serving_slot_changes``: who, when, what, why, and the whole state after it);
the newest row is the state a restarted server (or another replica) resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from spxcast.db import SlotChange
from spxcast.serving.errors import DeployRefused

SLOTS = ("blue", "green")


def other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


@dataclass(frozen=True)
class SlotState:
    """Versions per slot (None = empty), the live slot, the traffic share per slot and shadow mode.

    ``weights`` sum to 1; the live slot answers everything unless weights give the other slot a share (A/B).
    With ``shadow`` on, the slot that did not answer also scores the request (logged, never returned).
    """

    live: str = "blue"
    versions: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(SLOTS))
    weights: dict[str, float] = field(default_factory=lambda: {"blue": 1.0, "green": 0.0})
    shadow: bool = False

    @property
    def idle(self) -> str:
        return other(self.live)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SlotState:
        value = json.loads(text)
        return cls(
            live=value["live"],
            versions={s: value["versions"].get(s) for s in SLOTS},
            weights={s: float(value["weights"].get(s, 0.0)) for s in SLOTS},
            shadow=bool(value["shadow"]),
        )

    # ----- transitions (pure)
    def deployed(self, version: int, swap: bool) -> SlotState:
        """``version`` in the idle slot; with ``swap`` it becomes live and takes all traffic."""
        versions = {**self.versions, self.idle: version}
        if not swap:
            return replace(self, versions=versions)
        return SlotState(self.idle, versions, {self.idle: 1.0, self.live: 0.0}, shadow=False)

    def rolled_back(self) -> SlotState:
        """The idle slot (the previous version) live again with all traffic; shadow off."""
        if self.versions[self.idle] is None:
            raise DeployRefused("nothing to roll back to: the idle slot is empty")
        return SlotState(self.idle, dict(self.versions), {self.idle: 1.0, self.live: 0.0}, shadow=False)

    def reweighted(self, weights: dict[str, float]) -> SlotState:
        unknown = sorted(set(weights) - set(SLOTS))
        if unknown or any(w < 0 for w in weights.values()):
            raise DeployRefused(f"weights name slots {sorted(SLOTS)} with shares >= 0; got {weights}")
        full = {s: float(weights.get(s, 0.0)) for s in SLOTS}
        total = sum(full.values())
        if total <= 0:
            raise DeployRefused("weights must give some traffic to a slot; all are zero")
        full = {s: w / total for s, w in full.items()}
        empty = [s for s, w in full.items() if w > 0 and self.versions[s] is None]
        if empty:
            raise DeployRefused(f"slot {empty[0]} is empty and cannot take traffic; deploy a version into it")
        return replace(self, weights=full)

    def with_shadow(self, enabled: bool) -> SlotState:
        if enabled and self.versions[self.idle] is None:
            raise DeployRefused(
                f"shadow mode needs a version in the idle slot ({self.idle}); deploy one first"
            )
        return replace(self, shadow=enabled)


def route(state: SlotState, client_key: str) -> str:
    """The slot that answers a request: sticky per ``client_key`` (a hash mapped to [0, 1))."""
    share = state.weights[state.live]
    if share >= 1.0:
        return state.live
    digest = hashlib.blake2b(client_key.encode(), digest_size=8).digest()
    return state.live if int.from_bytes(digest, "big") / 2.0**64 < share else state.idle


@dataclass(frozen=True)
class Change:
    """One audited slot change."""

    id: int
    at: datetime
    actor: str
    action: str
    reason: str
    state: SlotState


def record(engine: Engine, actor: str, action: str, reason: str, state: SlotState) -> int:
    """Audit a change and store the state after it; returns the change id."""
    with Session(engine) as session, session.begin():
        row = SlotChange(
            at=datetime.now(UTC), actor=actor, action=action, reason=reason, state=state.to_json()
        )
        session.add(row)
        session.flush()
        return int(row.id)


def latest_id(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.max(SlotChange.id))) or 0)


def history(engine: Engine, limit: int = 100) -> list[Change]:
    """The newest ``limit`` changes, newest first."""
    with Session(engine) as session:
        rows = session.scalars(select(SlotChange).order_by(SlotChange.id.desc()).limit(limit)).all()
        return [
            Change(
                r.id,
                r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
                r.actor,
                r.action,
                r.reason,
                SlotState.from_json(r.state),
            )
            for r in rows
        ]
