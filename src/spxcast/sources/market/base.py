"""The contract every market-data source implements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol, runtime_checkable

import polars as pl

#: Columns of a raw candle frame. ``ts`` is the bar start; prices are mid (bid/ask closes optional).
#: Values may still be strings or garbage: :func:`spxcast.quality.validate_candles` turns them into
#: bronze rows or quarantine records.
RAW_CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "bid_close", "ask_close")


@runtime_checkable
class CandleSource(Protocol):
    """A source of candles for one instrument and granularity.

    ``fetch`` yields raw candle frames (columns :data:`RAW_CANDLE_COLUMNS`, any dtypes) for bars whose
    start lies in ``[start, end)``; ``None`` bounds mean "everything the source has" (file imports).
    Chunks are yielded as they arrive so the caller can validate and commit them one at a time.
    """

    name: str

    def fetch(
        self, instrument: str, granularity: str, start: datetime | None, end: datetime | None
    ) -> Iterator[pl.DataFrame]: ...
