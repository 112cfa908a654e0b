"""Search spaces as data: named numeric ranges, and the stage-2 narrowing rule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from spxcast.errors import ModelError


@dataclass(frozen=True)
class Range:
    """A numeric hyperparameter range; ``log`` ranges are sampled and narrowed in log space."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and self.low <= 0):
            raise ModelError(f"invalid range [{self.low}, {self.high}] (log={self.log})")

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SearchSpace = dict[str, Range]


def space_to_dict(space: SearchSpace) -> dict[str, dict[str, Any]]:
    return {name: r.to_dict() for name, r in space.items()}


def space_from_dict(data: dict[str, dict[str, Any]]) -> SearchSpace:
    return {name: Range(**r) for name, r in data.items()}


def suggest(trial: Any, space: SearchSpace) -> dict[str, float | int]:
    """Draw one point of ``space`` from an Optuna trial."""
    params: dict[str, float | int] = {}
    for name, r in space.items():
        if r.integer:
            params[name] = trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
        else:
            params[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
    return params


def narrow(space: SearchSpace, optimum: dict[str, float | int], factor: float = 0.3) -> SearchSpace:
    """Ranges ``factor`` times as wide as ``space`` (in log space for log ranges), centred on ``optimum``.

    Each new range lies inside the old one (shifted, not clipped, at the edges so it keeps its width) and
    contains the optimum; integer ranges are rounded outwards.
    """
    if not 0 < factor <= 1:
        raise ModelError(f"narrowing factor must be in (0, 1]; got {factor}")
    narrowed: SearchSpace = {}
    for name, r in space.items():
        if name not in optimum:
            raise ModelError(f"stage-1 optimum has no value for {name!r}; it has {sorted(optimum)}")
        value = float(optimum[name])
        if not r.contains(value):
            raise ModelError(f"stage-1 optimum {name}={value} lies outside its range [{r.low}, {r.high}]")
        to, back = (math.log, math.exp) if r.log else (float, float)
        low, high, centre = to(r.low), to(r.high), to(value)
        half = (high - low) * factor / 2
        new_low, new_high = centre - half, centre + half
        if new_low < low:
            new_low, new_high = low, low + 2 * half
        if new_high > high:
            new_low, new_high = high - 2 * half, high
        lo, hi = max(r.low, back(new_low)), min(r.high, back(new_high))
        if r.integer:
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        narrowed[name] = replace(r, low=min(lo, value), high=max(hi, value))
    return narrowed
