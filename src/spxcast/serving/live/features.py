"""The serving feature source with the live loop's newest vectors in front of gold.

The loop computes each new bar's vector online and pushes it here (in this process, or through the Redis
relay from a loop in another process); ``/predict`` then answers for the newest bar from memory, exactly
as for a gold row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from spxcast.config import Settings
from spxcast.lake import Lake
from spxcast.serving.features import FeatureRow, FeatureSource
from spxcast.timeutil import parse_utc, to_epoch_us

KEEP = 20_000
"""Live vectors kept in memory (older bars are answered from gold)."""


class LiveFeatureSource(FeatureSource):
    """:class:`FeatureSource` whose newest bars come from the live loop."""

    def __init__(self, settings: Settings, lake: Lake | None = None) -> None:
        super().__init__(settings, lake)
        self._live: OrderedDict[datetime, FeatureRow] = OrderedDict()
        self._push_lock = threading.Lock()

    def push(self, bar_ts: datetime, price: float | None, names: Sequence[str], values: np.ndarray) -> None:
        """The vector of bar ``bar_ts`` (start, UTC), known at its close; ``values`` in ``names`` order."""
        row = FeatureRow(
            self.instrument,
            bar_ts,
            bar_ts + self.bar,
            price,
            np.ascontiguousarray(values, dtype=np.float32),
            {name: i for i, name in enumerate(names)},
        )
        with self._push_lock:
            self._live[bar_ts] = row
            while len(self._live) > KEEP:
                self._live.popitem(last=False)

    def push_frame(self, frame: dict[str, Any]) -> None:
        """A ``vector`` frame of the Redis relay (pushed by a loop in another process)."""
        if frame["instrument"] != self.instrument or frame["granularity"] != self.granularity:
            return
        values = np.array([np.nan if v is None else v for v in frame["values"]], np.float32)
        self.push(parse_utc(frame["ts"]), frame.get("price"), frame["names"], values)

    def newest_live(self) -> datetime | None:
        """The start of the newest bar pushed by a loop (None before the first)."""
        with self._push_lock:
            return next(reversed(self._live), None)

    def row(self, instrument: str, ts: datetime | None = None) -> FeatureRow:
        if instrument == self.instrument and self._live:
            if ts is None:  # the newest bar: the loop's, unless gold was rebuilt past it since
                newest = next(reversed(self._live.values()))
                gold = self._series
                if gold is None or not len(gold.ts_us) or to_epoch_us(newest.bar_ts) >= gold.ts_us[-1]:
                    return newest
                return super().row(instrument, None)
            found = self._live.get(ts)
            if found is not None:
                return found
        return super().row(instrument, ts)

    @property
    def size(self) -> int:
        return super().size + len(self._live)
