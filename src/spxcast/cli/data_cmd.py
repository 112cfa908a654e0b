"""``spxcast data``: the health of stored data."""

from __future__ import annotations

import typer

from spxcast.cli._common import handle_errors, settings
from spxcast.cli.render import print_json, print_table

app = typer.Typer(help="Inspect the health of stored data.", no_args_is_help=True)


@app.command("health")
@handle_errors
def health(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Rows, time range, gaps by size, scheduled closures and quarantine counts of bronze.candles."""
    from rich.table import Table

    from spxcast.ingest.market import stored_health
    from spxcast.lake import Lake

    config = settings(ctx)
    stored = stored_health(Lake.from_settings(config), config.instrument, config.granularity, config.calendar)
    report = stored.report
    if as_json:
        print_json({**report.to_dict(), "quarantine_fraction": stored.quarantine_fraction})
        return
    summary = Table(title=f"bronze.candles {report.instrument} {report.granularity}", title_justify="left")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    for label, value in (
        ("rows", f"{report.rows:,}"),
        ("first bar", f"{report.first_ts:%Y-%m-%d %H:%M}" if report.first_ts else "-"),
        ("last bar", f"{report.last_ts:%Y-%m-%d %H:%M}" if report.last_ts else "-"),
        ("expected bars (calendar)", f"{report.expected_bars:,}"),
        ("coverage", f"{report.coverage:.2%}"),
        ("duplicate keys", f"{report.duplicate_keys:,}"),
        ("daily breaks", f"{report.scheduled.get('daily_break', 0):,}"),
        ("weekends", f"{report.scheduled.get('weekend', 0):,}"),
        ("quarantined records", f"{stored.quarantined_records:,} ({stored.quarantine_fraction:.2%})"),
    ):
        summary.add_row(label, value)
    print_table(summary)
    gaps = Table(title="unscheduled gaps (trading time missing)", title_justify="left")
    for column in ("size", "gaps", "missing bars"):
        gaps.add_column(column, justify="right")
    for bucket, numbers in report.gaps.items():
        gaps.add_row(bucket, f"{numbers['count']:,}", f"{numbers['missing_bars']:,}")
    print_table(gaps)
    reasons = Table(title="quarantine by reason", title_justify="left")
    reasons.add_column("reason")
    reasons.add_column("records", justify="right")
    for reason, count in report.quarantine.items():
        reasons.add_row(reason, f"{count:,}")
    if not report.quarantine:
        reasons.add_row("(none)", "0")
    print_table(reasons)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
