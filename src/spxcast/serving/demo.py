"""The serving part of ``make demo`` (``spxcast demo serving``): what to replay, and a client of the market
stream that tallies predictions against realised outcomes.

- :func:`newest_session`: the newest trading session with stored bars (the replay range);
- :func:`rewind_position`: a replay of history resumes after the series' live position (crash safety), so
  a demo replaying a range it played before first moves the position back before the range; the replayed
  bars keep their prediction ids, so the prediction log gains no duplicate;
- :func:`watch`: subscribe to ``/ws/market-stream`` and hand each ``bar`` and ``outcome`` frame to a
  callback until the replay's last bar has been streamed (or a time limit), returning a :class:`Tally`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, delete, select

from spxcast.db.models import LivePosition
from spxcast.errors import ConfigError, SpxcastError
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES, epoch_us
from spxcast.sources.market.calendar import resolve_calendar_name, trading_calendar
from spxcast.timeutil import bar_length

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOOK_BACK = timedelta(days=10)  # wider than any weekend or holiday run between two sessions


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Session:
    """A replay range ``[start, end)`` (UTC; ``end`` = the close of its last bar) holding ``bars`` bars."""

    start: datetime
    end: datetime
    last_bar: datetime
    bars: int


def newest_session(lake: Lake, instrument: str, granularity: str, calendar: str = "auto") -> Session:
    """The stored bars of the newest trading session that closed by the newest stored bar's close (the
    newest whole session); the session of the newest bar when no earlier one has stored bars."""
    if not lake.exists(CANDLES.name):
        raise ConfigError(
            "bronze.candles does not exist yet: run the pipeline first (spxcast pipeline run full)"
        )
    bars = lake.series(CANDLES.name, instrument, granularity).select("ts")
    newest = bars.select(pl.col("ts").max()).collect().item()
    if newest is None:
        raise ConfigError(f"bronze.candles has no {instrument} {granularity} bars: ingest some first")
    bar = bar_length(granularity)
    recent = bars.filter(pl.col("ts") > newest - _LOOK_BACK).collect()["ts"]
    stamps = epoch_us(recent)
    sessions = trading_calendar(resolve_calendar_name(instrument, calendar), newest - _LOOK_BACK, newest)
    closed = [i for i in range(len(sessions.closes)) if sessions.closes[i] <= _us(newest + bar)]
    current = int(np.searchsorted(sessions.closes, _us(newest), side="right"))
    for index in [*reversed(closed), current]:
        inside = stamps[(stamps >= sessions.opens[index]) & (stamps < sessions.closes[index])]
        if len(inside):
            first, last = (_EPOCH + timedelta(microseconds=int(v)) for v in (inside.min(), inside.max()))
            return Session(first, last + bar, last, len(inside))
    raise ConfigError(f"no trading session of {instrument} holds stored {granularity} bars")


def rewind_position(engine: Engine, instrument: str, granularity: str, before: datetime) -> datetime | None:
    """Forget the series' live position when it is at or after ``before``, so that a replay starting at
    ``before`` plays from its start; returns the forgotten position (None when nothing was changed)."""
    with engine.begin() as connection:
        where = (LivePosition.instrument == instrument) & (LivePosition.granularity == granularity)
        found = connection.execute(select(LivePosition.bar_ts).where(where)).scalar_one_or_none()
        if found is None:
            return None
        found = found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
        if found < before:
            return None
        connection.execute(delete(LivePosition).where(where))
        return found


@dataclass
class Tally:
    """What the stream showed: bars with a served prediction, outcomes, and how the served predictions
    did against them (``inside``: realised within the conformal interval; ``right``: same sign)."""

    bars: int = 0
    outcomes: int = 0
    with_interval: int = 0
    inside: int = 0
    right: int = 0
    served: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def add_bar(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """Count a ``bar`` frame; returns its served prediction (None when no model served it)."""
        served = next((p for p in frame.get("predictions", []) if p.get("role") == "served"), None)
        if served is not None:
            self.bars += 1
            self.served[frame["ts"]] = served
        return served

    def add_outcome(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """Count an ``outcome`` frame against the served prediction of its bar (None when its bar was
        streamed before this client connected); returns that prediction."""
        served = self.served.pop(frame["ts"], None)
        if served is None:
            return None
        realised = float(frame["realised_pct"])
        self.outcomes += 1
        self.right += int(np.sign(realised) == np.sign(served["predicted_pct"]))
        lower, upper = served.get("lower_pct"), served.get("upper_pct")
        if lower is not None and upper is not None:
            self.with_interval += 1
            self.inside += int(lower <= realised <= upper)
        return served

    @property
    def coverage(self) -> float:
        return self.inside / self.with_interval if self.with_interval else math.nan

    @property
    def hit_rate(self) -> float:
        return self.right / self.outcomes if self.outcomes else math.nan


def watch(
    base_url: str,
    instrument: str,
    last_bar: datetime,
    on_frame: Callable[[dict[str, Any], dict[str, Any] | None], None],
    *,
    timeout_s: float = 180.0,
    settle_s: float = 2.0,
    idle_s: float = 60.0,
) -> Tally:
    """Relay ``bar`` and ``outcome`` frames of ``instrument`` from the API at ``base_url`` to ``on_frame``
    (with the bar's served prediction, None when none is known) until the bar starting at ``last_bar``
    was streamed and ``settle_s`` seconds passed without a frame (the outcomes that follow it), or no frame
    came for ``idle_s`` seconds (the replay ended before this client connected, or stalled), or
    ``timeout_s`` seconds in all."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/")
    tally = Tally()
    deadline = time.monotonic() + timeout_s
    ended = False
    try:
        with connect(f"{url}/ws/market-stream?instruments={instrument}", open_timeout=10) as socket:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    text = socket.recv(timeout=min(left, settle_s if ended else idle_s))
                except TimeoutError:
                    break
                frame = json.loads(text)
                if frame.get("type") == "bar":
                    served = tally.add_bar(frame)
                    ended = ended or datetime.fromisoformat(frame["ts"]) >= last_bar
                elif frame.get("type") == "outcome":
                    served = tally.add_outcome(frame)
                else:
                    continue
                on_frame(frame, served)
    except (OSError, ConnectionClosed) as exc:
        raise SpxcastError(f"the market stream at {url} closed or cannot be reached: {exc}") from exc
    return tally
