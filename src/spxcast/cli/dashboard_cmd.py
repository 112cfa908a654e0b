"""``spxcast dashboard``: run the Streamlit dashboard (a client of the API at ``dashboard.api_url``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from spxcast.cli._common import console, handle_errors, settings


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


@handle_errors
def dashboard(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", help="Port (default 8501)"),
    api_url: str | None = typer.Option(
        None,
        "--api-url",
        help="The spxcast API (default http://127.0.0.1:8000); SPXCAST_DASHBOARD__API_URL",
    ),
) -> None:
    """Serve the dashboard until Ctrl-C: live forecasts, news, realised skill, health (read from the API)."""
    cfg = settings(ctx, **{"dashboard.host": host, "dashboard.port": port, "dashboard.api_url": api_url})
    # The Streamlit script builds its own settings (it runs in Streamlit's process); what was given here
    # travels as environment variables, like every other setting.
    os.environ.update(
        {
            "SPXCAST_HOME": str(cfg.home),
            "SPXCAST_INSTRUMENT": cfg.instrument,
            "SPXCAST_GRANULARITY": cfg.granularity,
            "SPXCAST_DASHBOARD__API_URL": cfg.dashboard.api_url,
        }
    )
    script = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    address = f"http://{cfg.dashboard.host}:{cfg.dashboard.port}"
    console.print(f"dashboard on {address} (API {cfg.dashboard.api_url}); Ctrl-C stops it", highlight=False)
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", cfg.dashboard.host,
        "--server.port", str(cfg.dashboard.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    sys.stdout.flush()
    os.execv(sys.executable, command)
