"""``spxcast monitor``: drift, realised performance, freshness and alerts of the served champion.

Verbs: run (one monitoring run: checks, report, alerts, channels, retrain policy), report (the newest run's
summary), alerts [ack|resolve ID] (the alerts table).
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.table import Table

from spxcast.cli._common import console, fail, handle_errors, settings
from spxcast.cli.render import print_json, print_table

app = typer.Typer(
    help="Monitoring: drift, decay on realised outcomes, freshness, alerts.", no_args_is_help=True
)
alerts_app = typer.Typer(help="Alerts: list (default), ack ID, resolve ID.", invoke_without_command=True)
app.add_typer(alerts_app, name="alerts")

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table")


def _num(value: Any, spec: str) -> str:
    """``value`` formatted, or "n/a" when a run could not measure it (null in the summary)."""
    return "n/a" if value is None else format(value, spec)


def _print_summary(summary: dict[str, Any]) -> None:
    realised = summary.get("realised") or {}
    champion = summary["champion"]
    lines = [
        f"run {summary['run_id']} at {summary['at']}: "
        + (f"champion v{champion['version']}" if champion else "no champion (freshness only)"),
        f"drift: {_num(summary['drift_share'], '.0%')} of features "
        f"({', '.join(summary['drifted_features'][:8]) or 'none'})",
        f"realised: {summary['realised_rows']} rows, RMSE {_num(realised.get('rmse'), '.4g')} "
        f"(champion test {_num(summary['reference_rmse'], '.4g')}), IC {_num(realised.get('ic'), '+.3f')}, "
        f"hit rate {_num(realised.get('hit_rate'), '.3f')}",
        f"freshness: bars {_num(summary['bar_age_minutes'], '.0f')} / news "
        f"{_num(summary['article_age_minutes'], '.0f')} trading minutes old (n/a: none stored); "
        f"quarantine {_num(summary['quarantine_rate'], '.2%')}",
        f"alerts: opened {summary['alerts_opened'] or 'none'}, resolved {summary['alerts_resolved']}, "
        f"suppressed by cooldown {len(summary['alerts_suppressed'])}; "
        f"channels {summary['channels'] or 'none'}",
        f"retrain: {summary['retrain']['action']} (policy {summary['retrain']['policy']})"
        + _retrain_line(summary["retrain"].get("result")),
        *_promotion_lines(summary.get("promotion")),
        f"report: {summary['report']}",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _retrain_line(result: dict[str, Any] | None) -> str:
    """What an automatic retrain did: training run, version, gates, shadow deploy (or the commands)."""
    if not result:
        return ""
    parts = [f"training run {result['training_run']} {result['status']}" if "training_run" in result else ""]
    parts.append(f"v{result['challenger']}" if result.get("challenger") else "")
    gates = result.get("gates")
    parts.append(f"gates {'passed' if gates['passed'] else 'failed: ' + gates['explain']}" if gates else "")
    shadow = result.get("shadow") or {}
    parts.append(f"shadow: {shadow['status']}" if shadow else result.get("error", ""))
    commands = shadow.get("commands") or result.get("commands") or []
    parts.append(f"run: {' && '.join(commands)}" if commands else "")
    return ": " + ("; ".join(p for p in parts if p) or str(result.get("status")))


def _promotion_lines(promotion: dict[str, Any] | None) -> list[str]:
    if not promotion:
        return []
    verdict = promotion.get("promoted") or "not promoted"
    return [
        f"promotion of v{promotion['challenger']}: {verdict} ({'; '.join(promotion['decision']['reasons'])})"
    ]


@app.command("run")
@handle_errors
def run(
    ctx: typer.Context,
    send: bool = typer.Option(True, "--send/--no-send", help="Notify the configured channels"),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML drift report"),
    at: str | None = typer.Option(
        None, "--at", help="Judge as of this UTC time (e.g. the end of a replayed range); default now"
    ),
    as_json: bool = JsonOption,
) -> None:
    """One monitoring run now (or as of --at)."""
    from spxcast.monitoring.service import auto_promote, retrain_now, run_monitoring
    from spxcast.timeutil import parse_utc

    now = None if at is None else parse_utc(at)
    summary = run_monitoring(
        settings(ctx), now=now, send=send, report=report, trainer=retrain_now, promoter=auto_promote
    )
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)


@app.command("report")
@handle_errors
def report(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The newest monitoring run's summary."""
    from spxcast.monitoring.service import latest

    summary = latest(settings(ctx))
    if summary is None:
        raise fail("no monitoring run yet: run spxcast monitor run")
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)


@app.command("promote")
@handle_errors
def promote(
    ctx: typer.Context,
    force: bool = typer.Option(
        False, "--force", help="Promote even if the live comparison does not allow it"
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (required with --force; audited)"),
    actor: str | None = typer.Option(None, "--by", help="Who acts (default registry.actor or the OS user)"),
    as_json: bool = JsonOption,
) -> None:
    """Promote the shadow challenger if it beats the champion on the same live rows (paired test, minimum
    rows, latency and error limits), or with --force --reason."""
    from spxcast.monitoring.service import promote_challenger

    result = promote_challenger(settings(ctx), force=force, reason=reason, actor=actor)
    if as_json:
        print_json(result)
        return
    verdict = "promoted" if result.get("promoted") else "not promoted"
    console.print(f"challenger {verdict}: {'; '.join(result['decision']['reasons'])}", highlight=False)
    if not result.get("promoted"):
        raise typer.Exit(1)


def _engine(ctx: typer.Context) -> Any:
    from spxcast.db import connect

    current = settings(ctx)
    return connect(current.db_url(), current.db.sqlite_busy_timeout_ms)


@alerts_app.callback()
@handle_errors
def list_alerts(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="open, acknowledged or resolved"),
    limit: int = typer.Option(50, "--limit", min=1),
    as_json: bool = JsonOption,
) -> None:
    """List alerts, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from spxcast.monitoring.service import list_alerts as query

    rows = query(_engine(ctx), status, limit)
    if as_json:
        print_json(rows)
        return
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for column in ("id", "status", "severity", "alert", "raised", "seen", "message"):
        table.add_column(column, no_wrap=column != "message")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["status"],
            row["severity"],
            row["key"],
            row["raised_at"][:16],
            str(row["count"]),
            row["message"],
        )
    if rows:
        print_table(table)
    else:
        console.print("no alerts")


def _set(ctx: typer.Context, alert_id: int, status: str, actor: str | None) -> None:
    from spxcast.monitoring.service import set_status

    row = set_status(_engine(ctx), alert_id, status, actor or getpass.getuser(), datetime.now(UTC))
    console.print(f"alert {row['id']} ({row['key']}) {row['status']}", highlight=False)


@alerts_app.command("ack")
@handle_errors
def ack(
    ctx: typer.Context,
    alert_id: int = typer.Argument(..., metavar="ID"),
    actor: str | None = typer.Option(None, "--by", help="Who (default the OS user)"),
) -> None:
    """Acknowledge an alert (it stays active; no new alert for its condition while it does)."""
    _set(ctx, alert_id, "acknowledged", actor)


@alerts_app.command("resolve")
@handle_errors
def resolve(
    ctx: typer.Context,
    alert_id: int = typer.Argument(..., metavar="ID"),
    actor: str | None = typer.Option(None, "--by", help="Who (default the OS user)"),
) -> None:
    """Resolve an alert by hand."""
    _set(ctx, alert_id, "resolved", actor)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="monitor")
