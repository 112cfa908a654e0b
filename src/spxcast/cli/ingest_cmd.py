"""``spxcast ingest``: bring market data and news into bronze. Each source family has its own module."""

from __future__ import annotations

import typer

from spxcast.cli.ingest_market import market
from spxcast.cli.ingest_news import news

app = typer.Typer(help="Ingest market data and news into the bronze layer.", no_args_is_help=True)
app.command("market")(market)
app.command("news")(news)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ingest")
