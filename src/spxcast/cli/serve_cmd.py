"""``spxcast serve``: run the prediction API under uvicorn; ``deploy|rollback|weights|shadow`` are thin
clients of its admin routes (the admin key is read from SPXCAST_SERVING__ADMIN_KEY, never printed)."""

from __future__ import annotations

import json
from typing import Any

import typer

from spxcast.cli._common import console, handle_errors, settings
from spxcast.errors import ConfigError, SpxcastError

serve_app = typer.Typer(help="Serve predictions over HTTP; manage the blue/green slots of a running server.")


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")


@serve_app.callback(invoke_without_command=True)
@handle_errors
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", help="Port (default 8000)"),
    workers: int | None = typer.Option(None, "--workers", help="uvicorn worker processes"),
    live: bool = typer.Option(False, "--live", help="Run the live loop in this process (spxcast live)"),
    replay: tuple[str, str] | None = typer.Option(
        None, "--replay", help="With --live: play a stored range FROM TO (UTC) instead of live.source"
    ),
    speed: str = typer.Option("60x", "--speed", help="With --replay: 60x (market time per second) or max"),
) -> None:
    """Run the API (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from spxcast.serving.app import create_app

    cfg = settings(ctx, **{"serving.host": host, "serving.port": port, "serving.workers": workers})
    if live and cfg.serving.workers != 1:
        raise ConfigError(
            f"spxcast serve --live runs the live loop inside one API process; it cannot feed "
            f"{cfg.serving.workers} workers. Run the loop on its own and let every worker relay it through "
            "Redis: set live.redis_url (SPXCAST_LIVE__REDIS_URL=redis://HOST:6379/0), start `spxcast live` "
            f"(or `spxcast live --replay FROM TO`), then `spxcast serve --workers {cfg.serving.workers}`"
        )
    if cfg.serving.workers == 1:
        if live or cfg.live.redis_url:
            from spxcast.serving.live.runtime import live_app

            app = live_app(cfg, live, replay, speed)
        else:
            app = create_app(cfg, server=True)
        uvicorn.run(app, host=cfg.serving.host, port=cfg.serving.port, log_level="warning", access_log=False)
        return
    # Workers are separate processes: each builds its app from the environment and config file, so the
    # global options given here travel as environment variables. With live.redis_url each worker relays
    # the stream (and the vectors) a `spxcast live` process publishes. Each worker keeps its own slot
    # snapshot (following the audited state), prediction-log queue and spool file; metrics are summed.
    import os

    from spxcast.serving.telemetry import shared_between_workers

    os.environ.update(
        {
            "SPXCAST_HOME": str(cfg.home),
            "SPXCAST_INSTRUMENT": cfg.instrument,
            "SPXCAST_GRANULARITY": cfg.granularity,
        }
    )
    factory = (
        "spxcast.serving.live.runtime:relay_app_from_environment"
        if cfg.live.redis_url
        else "spxcast.serving.app:app_from_environment"
    )
    with shared_between_workers():
        uvicorn.run(
            factory,
            factory=True,
            host=cfg.serving.host,
            port=cfg.serving.port,
            workers=cfg.serving.workers,
            log_level="warning",
            access_log=False,
        )


def _admin(ctx: typer.Context, url: str | None, path: str, body: dict[str, Any]) -> None:
    from spxcast.api_client import Api

    cfg = settings(ctx)
    key = cfg.serving.admin_key
    if key is None:
        raise SpxcastError("set SPXCAST_SERVING__ADMIN_KEY to the server's admin key to change its slots")
    base = url or f"http://{cfg.serving.host}:{cfg.serving.port}"
    # unreachable or refused: a SpxcastError with the server's detail (redacted), shown by handle_errors
    state = Api(base, timeout_s=120).admin(path, body, key.get_secret_value())
    console.print_json(json.dumps(state))


_URL = typer.Option(None, "--url", help="Server base URL (default http://<serving.host>:<serving.port>)")
_REASON = typer.Option(..., "--reason", help="Why (audited)")


@serve_app.command("deploy")
@handle_errors
def deploy(
    ctx: typer.Context,
    version: int = typer.Argument(..., help="Registered version to load into the idle slot"),
    reason: str = _REASON,
    no_swap: bool = typer.Option(False, "--no-swap", help="Load only; keep the live slot (for shadow/A/B)"),
    url: str | None = _URL,
) -> None:
    """Deploy a registered version (fingerprint and replay checks), then swap to it."""
    _admin(ctx, url, "deploy", {"version": version, "reason": reason, "swap": not no_swap})


@serve_app.command("rollback")
@handle_errors
def rollback(ctx: typer.Context, reason: str = _REASON, url: str | None = _URL) -> None:
    """Make the previous version (the idle slot) live again."""
    _admin(ctx, url, "rollback", {"reason": reason})


@serve_app.command("weights")
@handle_errors
def weights(
    ctx: typer.Context,
    blue: float = typer.Option(..., "--blue", help="Traffic share of the blue slot"),
    green: float = typer.Option(..., "--green", help="Traffic share of the green slot"),
    reason: str = _REASON,
    url: str | None = _URL,
) -> None:
    """Weighted A/B routing between the slots (sticky per client key)."""
    _admin(ctx, url, "weights", {"weights": {"blue": blue, "green": green}, "reason": reason})


@serve_app.command("shadow")
@handle_errors
def shadow(
    ctx: typer.Context,
    enabled: bool = typer.Argument(..., help="on/true or off/false"),
    reason: str = _REASON,
    url: str | None = _URL,
) -> None:
    """Shadow mode: the idle slot scores every request (logged, never returned)."""
    _admin(ctx, url, "shadow", {"enabled": enabled, "reason": reason})
