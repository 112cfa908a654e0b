"""The ``spxcast`` entry point: global options, then one verb group per module."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import typer

from spxcast import __version__
from spxcast.cli._common import GlobalOptions, redact_log_record

# Verb-group modules; each exposes ``register(app)``.
_GROUPS = (
    "config_cmd",
    "pipeline_cmd",
    "ingest_cmd",
    "data_cmd",
    "features_cmd",
    "news_cmd",
    "train_cmd",
    "models_cmd",
    "monitor_cmd",
    "serve_cmd",
    "live_cmd",
    "dashboard_cmd",
    "demo_cmd",
)

app = typer.Typer(
    name="spxcast",
    help="Point-in-time S&P 500 forecasting: ingest, features, news, train, evaluate, register.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spxcast {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="Home directory (lake, SQLite, MLflow); env SPXCAST_HOME"
    ),
    config: Path | None = typer.Option(
        None, "--config", help="spxcast.toml to read (default ./spxcast.toml)"
    ),
    instrument: str | None = typer.Option(None, "--instrument", help="Instrument, e.g. SPX500_USD"),
    granularity: str | None = typer.Option(
        None, "--granularity", help="Bar size: M1 (default), M5, M15, M30, H1, H4, D"
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Log progress at INFO level"),
    debug: bool = typer.Option(False, "--debug", help="Log at DEBUG level and show tracebacks"),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version"
    ),
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact_log_record)
    ctx.obj = GlobalOptions(
        config_file=config,
        overrides={"home": home, "instrument": instrument, "granularity": granularity},
    )


for _group in _GROUPS:
    importlib.import_module(f"spxcast.cli.{_group}").register(app)


def main() -> None:
    if "--debug" not in sys.argv:
        from spxcast.cli._panics import filter_native_panics

        filter_native_panics()
    app()


if __name__ == "__main__":
    main()
