"""``spxcast live``: the live loop in its own process (publishing through Redis to API replicas when
``live.redis_url`` is set), a replay of a stored range (``--replay FROM TO --speed 60x|max``), and
``spxcast live verify`` (backtest equals live)."""

from __future__ import annotations

import signal
from typing import Any

import typer

from spxcast.cli._common import console, handle_errors, settings
from spxcast.cli.render import print_json
from spxcast.timeutil import parse_utc

live_app = typer.Typer(help="Run the live loop: new candles -> features -> predictions -> log -> stream.")


def register(app: typer.Typer) -> None:
    app.add_typer(live_app, name="live")


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    verdict = "[green]equal[/]" if report.ok else "[red]DIFFERENT[/]"
    console.print(
        f"backtest = live over [{report.start.isoformat()}, {report.end.isoformat()}): {verdict} "
        f"({report.gold_bars} gold bars)",
        highlight=False,
    )
    for v in report.versions:
        console.print(
            f"  v{v.version}: {v.equal}/{v.predictions} predictions equal to batch "
            f"(max |diff| {v.max_abs_diff:.3g}), {v.missing_bars} gold bars not predicted live"
            + (f"; first difference {v.first_difference}" if v.first_difference else ""),
            highlight=False,
        )
    console.print(
        f"  {report.unpredicted_recorded} gold bars recorded as not predicted (no model loaded), "
        f"{report.unaccounted_bars} not predicted without a record",
        highlight=False,
    )
    console.print(
        f"  realised returns: {report.realised_equal}/{report.realised} equal to the gold label, "
        f"{report.realised_pending} labelled but not attached"
        + (
            f"; first difference {report.first_realised_difference}"
            if report.first_realised_difference
            else ""
        ),
        highlight=False,
    )


@live_app.callback(invoke_without_command=True)
@handle_errors
def live(
    ctx: typer.Context,
    replay: tuple[str, str] | None = typer.Option(
        None, "--replay", help="Play a stored range FROM TO (UTC) of bronze.candles instead of a live source"
    ),
    speed: str = typer.Option("max", "--speed", help="Replay speed: 60x (market time per second) or max"),
    source: str | None = typer.Option(None, "--source", help="Live source: oanda or files (live.source)"),
    files_dir: str | None = typer.Option(
        None, "--files-dir", help="Directory of candle files (files source)"
    ),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="After a replay, compare with batch"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
) -> None:
    """Run the loop until interrupted (or until the replay ends)."""
    if ctx.invoked_subcommand is not None:
        return
    from spxcast.serving.app import tune_as_server
    from spxcast.serving.live.hub import StreamHub
    from spxcast.serving.live.loop import LiveLoop
    from spxcast.serving.live.runtime import Replay, build_live_service, build_loop, parse_speed
    from spxcast.serving.live.verify import verify_live

    cfg = settings(ctx, **{"live.source": source, "live.files_dir": files_dir})
    chosen = (
        None
        if not replay or replay[0] is None
        else Replay(parse_utc(replay[0]), parse_utc(replay[1]), parse_speed(speed))
    )
    # A dedicated process, tuned as the API server is: the loop thread waits at most 0.5 ms for the GIL
    # held by its commit, feature store and Redis threads.
    service = build_live_service(cfg)
    tune_as_server(service)
    service.start(background=False)
    loop: LiveLoop | None = None
    try:
        loop = build_loop(cfg, service, chosen, StreamHub())
        signal.signal(signal.SIGTERM, lambda *_: loop.stop())
        loop.start()
        try:
            stats = loop.run(until_finished=chosen is not None)
        except KeyboardInterrupt:
            loop.stop()
            stats = loop.stats
        summary = {
            "bars": stats.bars,
            "predictions": stats.predictions,
            "quarantined": stats.quarantined,
            "outcomes": stats.outcomes,
            "realised_attached": stats.attached,
            "position": None if loop.position is None else loop.position.isoformat(),
        }
        if not as_json:
            console.print("live: " + ", ".join(f"{k} {v}" for k, v in summary.items()), highlight=False)
        report = None
        if chosen is not None and verify:
            report = verify_live(cfg, service.engine, chosen.start, chosen.end)
        if as_json:
            print_json({**summary, "parity": None if report is None else report.to_dict()})
        elif report is not None:
            _print_report(report, False)
        if report is not None and not report.ok:
            raise typer.Exit(1)
    finally:
        if loop is not None:
            loop.close()
        service.close()


@live_app.command("verify")
@handle_errors
def verify_cmd(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="First bar (UTC)"),
    end: str = typer.Option(..., "--to", help="End (UTC, exclusive)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Backtest equals live: the logged live predictions and realised returns against batch and gold."""
    from spxcast.db import connect
    from spxcast.serving.live.verify import verify_live

    cfg = settings(ctx)
    engine = connect(cfg.db_url(), cfg.db.sqlite_busy_timeout_ms)
    report = verify_live(cfg, engine, parse_utc(start), parse_utc(end))
    _print_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)
