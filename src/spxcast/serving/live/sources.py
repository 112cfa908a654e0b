"""Where new complete candles come from: one protocol, three sources.

- :class:`OandaPolling`: OANDA v20 candles polled every ``live.poll_s``, from the bar after the newest one
  the loop holds; the client keeps only complete candles (an incomplete one is the bar still forming, asked
  again next poll) and retries 429/5xx with backoff.
- :class:`DirectorySource`: candle files (CSV, Parquet, NDJSON) appearing in a directory over time.
- :class:`ReplaySource`: a stored range of ``bronze.candles`` played at a chosen speed (``60`` = one minute
  of market time per wall-clock second, ``None`` = as fast as the loop goes), for demos, tests and the
  backtest-equals-live proof. Its clock is the replayed market time.

A source returns raw candles (any dtype; validation is the loop's :func:`~spxcast.quality.validate_candles`)
with ``ts`` after the position it is given; the loop keeps order and drops what it has already processed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import polars as pl

from spxcast.config import FilesSourceSettings
from spxcast.errors import ConfigError
from spxcast.features.catalog import BAR_COLUMNS
from spxcast.lake import Lake
from spxcast.lake.tables import CANDLES
from spxcast.sources.market.files import FileCandleSource
from spxcast.sources.market.oanda import OandaCandleSource
from spxcast.timeutil import bar_length

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BarSource(Protocol):
    """New complete candles of one series."""

    name: str
    origin: datetime | None
    """Where a first run starts: None = after the newest stored bar (live sources); a replay's start."""
    redelivers: bool
    """Whether a new source object delivers again every bar after a given position (a restart after a crash
    gets the bars it had not committed): the loop may then publish a bar before committing it."""

    def poll(self, after: datetime | None) -> pl.DataFrame:
        """Raw candles that may be newer than ``after`` (bar start, UTC); empty when nothing is new."""
        ...

    def stored_in(self, lake: Lake) -> bool:
        """Whether its bars are rows of ``lake``'s bronze.candles already (a replay of that lake): the loop
        does not store them again, which would only overwrite their provenance (``source``,
        ``ingested_at``) and add a Delta version that makes every task reading bronze run again."""
        ...

    def now(self) -> datetime:
        """The source's clock (UTC): wall time for live sources, market time for a replay."""
        ...

    def wait_s(self) -> float:
        """Seconds to wait before the next poll."""
        ...

    @property
    def finished(self) -> bool:
        """True when no candle will ever come again (the end of a replay)."""
        ...


class _LiveSource:
    """What the live sources share: wall-clock time, a fixed poll interval, no end."""

    origin: datetime | None = None
    poll_s: float
    clock: Clock

    def now(self) -> datetime:
        return self.clock()

    def wait_s(self) -> float:
        return self.poll_s

    @property
    def finished(self) -> bool:
        return False

    def stored_in(self, lake: Lake) -> bool:
        return False  # new candles from outside the lake


class OandaPolling(_LiveSource):
    """OANDA candles after the newest processed bar, asked for every ``poll_s`` seconds."""

    name = "oanda"
    redelivers = True  # the broker's candle history

    def __init__(
        self,
        client: OandaCandleSource,
        instrument: str,
        granularity: str,
        poll_s: float,
        first: datetime | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.client = client
        self.instrument = instrument
        self.granularity = granularity
        self.poll_s = poll_s
        self.bar = bar_length(granularity)
        self.first = first
        self.clock = clock

    def poll(self, after: datetime | None) -> pl.DataFrame:
        now = self.clock()
        start = after + self.bar if after is not None else self.first or now - 500 * self.bar
        frames = list(self.client.fetch(self.instrument, self.granularity, start, now + self.bar))
        return pl.concat(frames, how="vertical") if frames else pl.DataFrame()


class DirectorySource(_LiveSource):
    """Candle files appearing in ``directory``, read once each in name order (new or changed files)."""

    name = "files"
    redelivers = False  # a file read may be removed before the restart

    def __init__(
        self, directory: Path, config: FilesSourceSettings, poll_s: float, clock: Clock = utc_now
    ) -> None:
        if not directory.is_dir():
            raise ConfigError(f"live.files_dir {directory} is not a directory; create it or point elsewhere")
        self.directory = directory
        self.config = config
        self.poll_s = poll_s
        self.clock = clock
        self._seen: dict[str, tuple[int, int]] = {}

    def poll(self, after: datetime | None) -> pl.DataFrame:
        frames: list[pl.DataFrame] = []
        for path in sorted(p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")):
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            if self._seen.get(path.name) == signature:
                continue
            self._seen[path.name] = signature
            source = FileCandleSource(self.config, path)
            frames.extend(frame.drop("line", strict=False) for frame in source.fetch("", "", None, None))
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


class ReplaySource:
    """Bars of ``bronze.candles`` with ``start <= ts < end``, released as market time passes.

    Parameters
    ----------
    speed : market seconds per wall-clock second (``60`` plays an M1 bar per second); ``None`` = max.
    batch : at most this many bars per poll (max speed), so the loop commits in steps.
    """

    name = "replay"
    redelivers = True  # bronze.candles itself
    origin: datetime | None

    def __init__(
        self,
        lake: Lake,
        instrument: str,
        granularity: str,
        start: datetime,
        end: datetime,
        speed: float | None = None,
        batch: int = 64,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if end <= start:
            raise ConfigError(f"replay range is empty: {start.isoformat()} is not before {end.isoformat()}")
        self.bars = (
            lake.series(CANDLES.name, instrument, granularity)
            .filter((pl.col("ts") >= start) & (pl.col("ts") < end))
            .select(BAR_COLUMNS)
            .collect()
        )
        if self.bars.is_empty():
            raise ConfigError(
                f"bronze.candles has no {instrument} {granularity} bars in [{start.isoformat()}, "
                f"{end.isoformat()}); ingest that range first or choose another"
            )
        self.lake = lake
        self.start = start
        self.end = end
        self.origin = start
        self.speed = speed
        self.batch = batch
        self.bar = bar_length(granularity)
        self._wall = wall
        self._began: float | None = None
        self._next = 0
        self._clock = start

    def _released(self) -> datetime:
        """Market time reached: the replay start plus the wall time since the first poll times speed."""
        if self._began is None:
            self._began = self._wall()
        if self.speed is None:
            return datetime.max.replace(tzinfo=UTC)
        return self.start + timedelta(seconds=(self._wall() - self._began) * self.speed)

    def poll(self, after: datetime | None) -> pl.DataFrame:
        reached = self._released()
        ts = self.bars["ts"]
        if after is not None and self._next == 0:  # resuming: skip what was processed before
            self._next = int(ts.search_sorted(after, side="right"))
        stop = self._next
        while stop < len(ts) and stop - self._next < self.batch and ts[stop] + self.bar <= reached:
            stop += 1
        chunk = self.bars.slice(self._next, stop - self._next)
        self._next = stop
        if not chunk.is_empty():
            self._clock = chunk["ts"][-1] + self.bar
        return chunk

    def stored_in(self, lake: Lake) -> bool:
        """True when replaying ``lake`` itself; a replay of another lake stands for a live source."""
        return lake.root == self.lake.root

    def now(self) -> datetime:
        """Market time of the replay: the close of the newest released bar."""
        return self._clock

    def wait_s(self) -> float:
        if self.speed is None or self._next >= self.bars.height:
            return 0.0
        due = self.bars["ts"][self._next] + self.bar - self.start
        began = self._began if self._began is not None else self._wall()
        return max(0.0, due.total_seconds() / self.speed - (self._wall() - began))

    @property
    def finished(self) -> bool:
        return self._next >= self.bars.height
