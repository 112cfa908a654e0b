"""``spxcast ingest market``."""

from __future__ import annotations

from pathlib import Path

import typer

from spxcast.cli._common import console, handle_errors, progress, settings


@handle_errors
def market(
    ctx: typer.Context,
    source: str | None = typer.Option(None, "--source", help="synthetic (default), oanda or files"),
    start: str | None = typer.Option(None, "--start", help="First bar start, ISO-8601 UTC (e.g. 2024-01-01)"),
    end: str | None = typer.Option(None, "--end", help="End of the range (exclusive), ISO-8601 UTC"),
    file: Path | None = typer.Option(None, "--file", help="Candle file for --source files"),
    fmt: str | None = typer.Option(None, "--format", help="auto (by suffix), csv, parquet or ndjson"),
    mapping: list[str] | None = typer.Option(
        None, "--map", help="Column mapping bronze=file, e.g. --map ts=time"
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="Timezone of naive timestamps in the file (default UTC)"
    ),
    chunk_days: int | None = typer.Option(
        None, "--chunk-days", min=1, help="Days committed per atomic write"
    ),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="OANDA: continue after the newest stored bar"
    ),
) -> None:
    """Bring candles into bronze.candles: validated, quarantined with reasons, committed chunk by chunk."""
    from spxcast.ingest.market import ingest_market
    from spxcast.lake import Lake
    from spxcast.sources.market.files import parse_column_map

    overrides: dict[str, object] = {"market.chunk_days": chunk_days, "market.files.timezone": tz}
    if mapping:
        overrides["market.files.columns"] = parse_column_map(mapping)
    config = settings(ctx, **overrides)
    with progress() as bar:
        task = bar.add_task("ingesting", total=None)

        def show(done: int, total: int | None, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message)

        report = ingest_market(
            config,
            Lake.from_settings(config),
            source=source,
            start=start,
            end=end,
            file=file,
            fmt=fmt,
            resume=resume,
            on_progress=show,
        )
    window = (
        f" {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M}"
        if report.start and report.end
        else ""
    )
    console.print(
        f"[bold]{report.source}[/] {report.instrument} {report.granularity}{window}: "
        f"{report.input_rows:,} rows read, [green]{report.accepted_rows:,} accepted[/], "
        f"[yellow]{report.quarantined_rows:,} quarantined[/] in {report.chunks} chunks, {report.seconds:.1f}s"
    )
    if report.reasons:
        console.print(
            "quarantine reasons: " + ", ".join(f"{k}={v}" for k, v in sorted(report.reasons.items()))
        )
    if report.event_rows or report.oracle_rows:
        console.print(f"synthetic events: {report.event_rows:,}, oracle rows: {report.oracle_rows:,}")
    console.print("table versions: " + ", ".join(f"{k}={v}" for k, v in report.table_versions.items()))
