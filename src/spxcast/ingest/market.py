"""Market ingestion: source -> validation -> bronze, committed chunk by chunk.

The requested range is cut into windows of ``market.chunk_days`` days (file imports: batches of
``market.files.batch_rows`` rows). Each window is fetched, validated and written as atomic Delta commits
(synthetic events and oracle, quarantine, then candles). A crash (even ``kill -9``) loses at most the
window in flight; every write is a merge on the table key, so rerunning the same command completes the
range and leaves exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from spxcast.config import Settings
from spxcast.errors import ConfigError
from spxcast.lake import Lake
from spxcast.quality import HealthReport, ValidationResult, candle_health, quarantine_counts, validate_candles
from spxcast.quality.candles import quarantine_origin
from spxcast.sources.market.base import CandleSource
from spxcast.timeutil import bar_length, parse_utc

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "oanda", "files")

#: ``on_progress(done, total, message)``: units done (windows or file batches) out of ``total``
#: (``None`` when unknown, as for files).
ProgressCallback = Callable[[int, int | None, str], None]


@dataclass
class IngestReport:
    """What one ingestion did. Row counts are over the whole run; versions are after the last commit."""

    source: str
    instrument: str
    granularity: str
    start: datetime | None
    end: datetime | None
    chunks: int = 0
    input_rows: int = 0
    accepted_rows: int = 0
    quarantined_rows: int = 0
    normalised_to_utc: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    event_rows: int = 0
    oracle_rows: int = 0
    table_versions: dict[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, result: ValidationResult) -> None:
        self.chunks += 1
        self.input_rows += result.input_rows
        self.accepted_rows += result.accepted.height
        self.quarantined_rows += result.quarantined.height
        self.normalised_to_utc += result.normalised_to_utc
        for reason, count in result.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = self.start.isoformat() if self.start else None
        out["end"] = self.end.isoformat() if self.end else None
        out["seconds"] = round(self.seconds, 3)
        return out


def windows(start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of ``days`` days (the last one may be shorter)."""
    step = timedelta(days=days)
    out = []
    cursor = start
    while cursor < end:
        out.append((cursor, min(cursor + step, end)))
        cursor += step
    return out


def newest_stored_bar(
    lake: Lake, instrument: str, granularity: str, start: datetime | None = None, end: datetime | None = None
) -> datetime | None:
    """Start of the newest stored bar of the series (inside ``[start, end)`` when given), or ``None``."""
    if not lake.exists("bronze.candles"):
        return None
    selected = (pl.col("instrument") == instrument) & (pl.col("granularity") == granularity)
    if start is not None:
        selected &= pl.col("ts") >= start
    if end is not None:
        selected &= pl.col("ts") < end
    newest: datetime | None = (
        lake.scan("bronze.candles").filter(selected).select(pl.col("ts").max()).collect().item()
    )
    return newest


def _range(
    settings: Settings, lake: Lake, source: str, start: str | None, end: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` to ingest. An OANDA download without a start continues the stored series."""
    market = settings.market
    chosen_end = end or market.end
    if source == "synthetic":
        begin = parse_utc(start or market.start or market.synthetic.start)
        finish = parse_utc(chosen_end) if chosen_end else begin + timedelta(days=market.synthetic.days)
    else:
        finish = parse_utc(chosen_end) if chosen_end else now
        chosen = start or market.start
        if chosen is not None:
            begin = parse_utc(chosen)
        else:
            newest = newest_stored_bar(lake, settings.instrument, settings.granularity, None, finish)
            if newest is None:
                raise ConfigError(
                    f"nothing of {settings.instrument} {settings.granularity} is stored yet to continue "
                    "from: pass --start YYYY-MM-DD (or set market.start) for the first OANDA download"
                )
            begin = newest
    if finish <= begin:
        raise ConfigError(
            f"bad date range: end {finish:%Y-%m-%d %H:%M} is not after start {begin:%Y-%m-%d %H:%M}"
        )
    return begin, finish


def make_source(
    settings: Settings, source: str, file: str | Path | None = None, fmt: str | None = None
) -> CandleSource:
    """The candle source called ``source`` built from settings."""
    if source == "synthetic":
        from spxcast.sources.market.synthetic import SyntheticCandleSource

        return SyntheticCandleSource(settings.market.synthetic, settings.seed, settings.horizon_minutes)
    if source == "oanda":
        from spxcast.sources.market.oanda import OandaCandleSource

        return OandaCandleSource(settings.oanda)
    if source == "files":
        from spxcast.sources.market.files import FileCandleSource

        return FileCandleSource(settings.market.files, file, fmt)
    raise ConfigError(f"unknown market source {source!r}; choose one of {', '.join(SOURCES)}")


def ingest_market(
    settings: Settings,
    lake: Lake,
    *,
    source: str | None = None,
    start: str | None = None,
    end: str | None = None,
    file: str | Path | None = None,
    fmt: str | None = None,
    resume: bool = True,
    now: datetime | None = None,
    candle_source: CandleSource | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest market data into ``bronze.candles`` (plus quarantine, and synthetic events and oracle).

    Parameters
    ----------
    source
        ``synthetic`` (default range: ``market.synthetic.start`` plus ``days``), ``oanda`` (default end:
        now) or ``files`` (the whole file); default ``settings.market.source``.
    start, end
        ISO-8601 range ``[start, end)`` of bar starts, UTC when naive.
    resume
        OANDA only: continue after the newest bar already stored in the range. Without a start, an
        OANDA download continues after the newest stored bar of the series.
    now
        The clock for the future-timestamp check; default the current time.
    candle_source
        An already built source (tests, custom clients); default built from settings.
    """
    began = time.perf_counter()
    now = now or datetime.now(UTC)
    name = source or settings.market.source
    if name not in SOURCES:
        raise ConfigError(f"unknown market source {name!r}; choose one of {', '.join(SOURCES)}")
    if name == "files" and (start or end):
        raise ConfigError("a file import takes the whole file; drop --start/--end for --source files")
    chosen = candle_source or make_source(settings, name, file, fmt)
    instrument, granularity = settings.instrument, settings.granularity
    timezone = settings.market.files.timezone if name == "files" else "UTC"

    def commit(raw: pl.DataFrame, report: IngestReport) -> None:
        result = validate_candles(
            raw,
            instrument=instrument,
            granularity=granularity,
            source=name,
            now=now,
            quality=settings.quality,
            timezone=timezone,
        )
        if result.quarantined.height:
            lake.write("bronze.quarantine", result.quarantined)
        if result.accepted.height:
            lake.write("bronze.candles", result.accepted)
        report.add(result)

    if name == "files":
        report = IngestReport(name, instrument, granularity, None, None)
        for index, batch in enumerate(chosen.fetch(instrument, granularity, None, None), start=1):
            commit(batch, report)
            _notify(on_progress, index, None, f"batch {index}: {report.input_rows:,} rows read")
        return _finish(report, lake, began)

    begin, finish = _range(settings, lake, name, start, end, now)
    report = IngestReport(name, instrument, granularity, begin, finish)
    if name == "oanda" and resume:
        newest = newest_stored_bar(lake, instrument, granularity, begin, finish)
        if newest is not None:
            begin = newest + bar_length(granularity)
            log.info("resuming %s %s after the newest stored bar %s", instrument, granularity, newest)
    parts = windows(begin, finish, settings.market.chunk_days)
    _notify(on_progress, 0, len(parts), f"{name} {instrument} {granularity}")
    for index, (lo, hi) in enumerate(parts, start=1):
        if name == "synthetic":
            from spxcast.sources.market.synthetic import SyntheticCandleSource

            assert isinstance(chosen, SyntheticCandleSource)
            market = chosen.generate(instrument, granularity, lo, hi)
            if market.events.height:
                lake.write("bronze.synthetic_events", market.events)
                report.event_rows += market.events.height
            if market.oracle is not None and market.oracle.height:
                lake.write("bronze.synthetic_oracle", market.oracle)
                report.oracle_rows += market.oracle.height
            raw = market.candles
        else:
            pages = list(chosen.fetch(instrument, granularity, lo, hi))
            raw = pl.concat(pages, how="diagonal_relaxed") if pages else pl.DataFrame()
        if raw.height:
            commit(raw, report)
        _notify(
            on_progress, index, len(parts), f"{lo:%Y-%m-%d} to {hi:%Y-%m-%d}: {report.accepted_rows:,} bars"
        )
    return _finish(report, lake, began)


def _notify(on_progress: ProgressCallback | None, done: int, total: int | None, message: str) -> None:
    log.info("ingest %s/%s: %s", done, total if total is not None else "?", message)
    if on_progress is not None:
        on_progress(done, total, message)


def _finish(report: IngestReport, lake: Lake, began: float) -> IngestReport:
    tables = ["bronze.candles", "bronze.quarantine"]
    if report.source == "synthetic":
        tables += ["bronze.synthetic_events", "bronze.synthetic_oracle"]
    report.table_versions = lake.versions(tables)
    report.seconds = time.perf_counter() - began
    return report


@dataclass(frozen=True)
class StoredHealth:
    """Health of a stored series plus the number of its quarantined candle records (all sources)."""

    report: HealthReport
    quarantined_records: int

    @property
    def quarantine_fraction(self) -> float:
        total = self.quarantined_records + self.report.rows
        return self.quarantined_records / total if total else 0.0


def stored_health(lake: Lake, instrument: str, granularity: str, calendar: str = "auto") -> StoredHealth:
    """The data-health report of ``bronze.candles`` for one series (empty when nothing is stored) on the
    trading ``calendar`` (``settings.calendar``)."""
    candles = (
        lake.scan("bronze.candles")
        .filter((pl.col("instrument") == instrument) & (pl.col("granularity") == granularity))
        .select("instrument", "granularity", "ts")
        .collect()
        if lake.exists("bronze.candles")
        else pl.DataFrame(
            schema={"instrument": pl.Utf8, "granularity": pl.Utf8, "ts": pl.Datetime("us", "UTC")}
        )
    )
    quarantine = (
        lake.scan("bronze.quarantine")
        .filter(
            (pl.col("table") == "bronze.candles")
            & pl.col("source").str.ends_with(quarantine_origin("", instrument, granularity))
        )
        .select("table", "reasons")
        .collect()
        if lake.exists("bronze.quarantine")
        else pl.DataFrame(schema={"table": pl.Utf8, "reasons": pl.List(pl.Utf8)})
    )
    report = candle_health(candles, instrument, granularity, quarantine_counts(quarantine), calendar)
    return StoredHealth(report, quarantine.height)
