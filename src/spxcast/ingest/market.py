"""Market ingestion: source -> validation -> bronze, committed chunk by chunk.

The requested range is cut into windows of ``market.chunk_days`` days (file imports: batches of
``market.files.batch_rows`` rows). Each window is fetched, validated and written as atomic Delta commits
(synthetic events and oracle, quarantine, then candles). A crash (even ``kill -9``) loses at most the
window in flight; every write is a merge on the table key, so rerunning the same command completes the
range and leaves exactly the rows of an uninterrupted run. :func:`append_bars` is the one
validate-quarantine-commit step, shared with the live loop.
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

from spxcast.config import QualitySettings, Settings
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


def append_bars(
    lake: Lake,
    raw: pl.DataFrame,
    *,
    instrument: str,
    granularity: str,
    source: str,
    now: datetime,
    quality: QualitySettings,
    timezone: str = "UTC",
) -> ValidationResult:
    """Validate raw candles of one series and commit them: the one write path of ``bronze.candles``.

    Every row is either accepted into ``bronze.candles`` or quarantined with its reasons in
    ``bronze.quarantine`` (see :func:`spxcast.quality.validate_candles`); each table gets one atomic Delta
    merge on its key, the quarantine first. Appending the same rows again changes nothing, so a caller
    that crashed can append its last batch again. Batch ingestion calls this per window or file batch;
    a live loop calls it per closed bar.

    Parameters
    ----------
    raw
        Raw candles in any dtype (columns ``ts, open, high, low, close`` and optionally ``volume,
        bid_close, ask_close, complete, record_error``); ``ts`` is the bar start.
    source
        The source's name, stored on each row (``synthetic``, ``oanda``, ``files``, ...).
    now
        The clock (aware UTC): bars closing after ``now + quality.max_future_skew_s`` are quarantined,
        and ``ingested_at`` is ``now``.
    timezone
        IANA zone of naive timestamps.

    Returns
    -------
    ValidationResult
        What was accepted and quarantined (rows and reason counts).
    """
    result = validate_candles(
        raw,
        instrument=instrument,
        granularity=granularity,
        source=source,
        now=now,
        quality=quality,
        timezone=timezone,
    )
    store_bars(lake, result)
    return result


def store_bars(lake: Lake, result: ValidationResult) -> None:
    """Commit validated candles (:func:`spxcast.quality.validate_candles`): the quarantine first, then the
    accepted rows, one atomic Delta merge on its key each (idempotent). :func:`append_bars` is validate +
    this; the live loop validates a poll first and commits it when its position may move past it."""
    if result.quarantined.height:
        lake.write("bronze.quarantine", result.quarantined)
    if result.accepted.height:
        lake.write("bronze.candles", result.accepted)


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
    if name == "files":
        report = _ingest_file(settings, lake, chosen, now, on_progress)
    else:
        begin, finish = _range(settings, lake, name, start, end, now)
        report = IngestReport(name, settings.instrument, settings.granularity, begin, finish)
        if name == "oanda" and resume:
            begin = _resume_point(lake, report, begin, finish)
        _ingest_windows(
            settings,
            lake,
            chosen,
            report,
            windows(begin, finish, settings.market.chunk_days),
            now,
            on_progress,
        )
    return _finish(report, lake, began)


def _append(settings: Settings, lake: Lake, raw: pl.DataFrame, report: IngestReport, now: datetime) -> None:
    """:func:`append_bars` for the series of ``report``, counted into it."""
    timezone = settings.market.files.timezone if report.source == "files" else "UTC"
    result = append_bars(
        lake,
        raw,
        instrument=report.instrument,
        granularity=report.granularity,
        source=report.source,
        now=now,
        quality=settings.quality,
        timezone=timezone,
    )
    report.add(result)


def _ingest_file(
    settings: Settings,
    lake: Lake,
    chosen: CandleSource,
    now: datetime,
    on_progress: ProgressCallback | None,
) -> IngestReport:
    """Append a file batch by batch (the whole file; its range is what it holds)."""
    report = IngestReport("files", settings.instrument, settings.granularity, None, None)
    for index, batch in enumerate(chosen.fetch(report.instrument, report.granularity, None, None), start=1):
        _append(settings, lake, batch, report, now)
        _notify(on_progress, index, None, f"batch {index}: {report.input_rows:,} rows read")
    return report


def _resume_point(lake: Lake, report: IngestReport, begin: datetime, finish: datetime) -> datetime:
    """Where an OANDA download continues: after the newest bar stored in ``[begin, finish)``."""
    newest = newest_stored_bar(lake, report.instrument, report.granularity, begin, finish)
    if newest is None:
        return begin
    log.info("resuming %s %s after the newest stored bar %s", report.instrument, report.granularity, newest)
    return newest + bar_length(report.granularity)


def _ingest_windows(
    settings: Settings,
    lake: Lake,
    chosen: CandleSource,
    report: IngestReport,
    parts: list[tuple[datetime, datetime]],
    now: datetime,
    on_progress: ProgressCallback | None,
) -> None:
    """Fetch and append window after window (a crash loses at most the window in flight)."""
    _notify(on_progress, 0, len(parts), f"{report.source} {report.instrument} {report.granularity}")
    for index, (lo, hi) in enumerate(parts, start=1):
        raw = _fetch_window(lake, chosen, report, lo, hi)
        if raw.height:
            _append(settings, lake, raw, report, now)
        message = f"{lo:%Y-%m-%d} to {hi:%Y-%m-%d}: {report.accepted_rows:,} bars"
        _notify(on_progress, index, len(parts), message)


def _fetch_window(
    lake: Lake, chosen: CandleSource, report: IngestReport, lo: datetime, hi: datetime
) -> pl.DataFrame:
    """Raw candles of ``[lo, hi)``; the synthetic market also commits its events and oracle first."""
    from spxcast.sources.market.synthetic import SyntheticCandleSource

    if not isinstance(chosen, SyntheticCandleSource):
        pages = list(chosen.fetch(report.instrument, report.granularity, lo, hi))
        return pl.concat(pages, how="diagonal_relaxed") if pages else pl.DataFrame()
    market = chosen.generate(report.instrument, report.granularity, lo, hi)
    if market.events.height:
        lake.write("bronze.synthetic_events", market.events)
        report.event_rows += market.events.height
    if market.oracle is not None and market.oracle.height:
        lake.write("bronze.synthetic_oracle", market.oracle)
        report.oracle_rows += market.oracle.height
    return market.candles


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
