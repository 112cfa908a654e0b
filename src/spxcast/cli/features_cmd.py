"""``spxcast features``: build the feature tables, list the catalog, show one bar's vector, write the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from spxcast.cli._common import console, err_console, handle_errors, outputs_line, progress, settings
from spxcast.cli.render import print_json, print_table

app = typer.Typer(help="Point-in-time features: build, inspect, document.", no_args_is_help=True)


@app.command("build")
@handle_errors
def build(
    ctx: typer.Context,
    news: bool = typer.Option(
        True,
        "--news/--no-news",
        help="Score news and build news signals first (--no-news: market features only, no news)",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what each task wrote as one JSON document"),
) -> None:
    """Build silver groups, news scores and signals, gold.market_features and gold.features (with labels)."""
    from datetime import UTC, datetime

    from spxcast.pipeline.tasks.features import build_features

    run_id = f"features-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with progress() as bar:
        stage = bar.add_task("feature build", total=None)

        def show(task: str, result: dict[str, Any] | None) -> None:
            if result is None:
                bar.update(stage, description=task)
                err_console.print(f"  [cyan]running[/] {task}")
            else:
                bar.advance(stage)
                if not as_json:
                    console.print(f"  [green]done[/] {task}: {outputs_line(result)}", highlight=False)

        results = build_features(settings(ctx), run_id, on_step=show, include_news=news)
    if as_json:
        print_json({"run_id": run_id, "tasks": results})


@app.command("list")
@handle_errors
def list_features(
    ctx: typer.Context,
    group: str | None = typer.Option(None, "--group", help="Only this group (returns, technical, ...)"),
) -> None:
    """The feature catalog: name, group, unit, lookback and description."""
    from spxcast.errors import ConfigError
    from spxcast.features.catalog import default_catalog
    from spxcast.pipeline.tasks.features import feature_context

    catalog = default_catalog(feature_context(settings(ctx)))
    if group is not None and group not in catalog.groups():
        raise ConfigError(f"unknown feature group {group!r}; groups: {', '.join(catalog.groups())}")
    table = Table(title=f"{len(catalog.names(group))} features", title_justify="left")
    # Names are identifiers users copy: never wrapped.
    table.add_column("name", no_wrap=True, min_width=max(len(n) for n in catalog.names()))
    for column in ("group", "unit", "lookback", "description"):
        table.add_column(column, overflow="fold")
    for spec in catalog:
        if group is None or spec.group == group:
            table.add_row(spec.name, spec.group, spec.unit, str(spec.lookback), spec.description)
    print_table(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    at: str = typer.Option(..., "--at", help="Bar start time (UTC, ISO-8601), e.g. 2024-03-01T14:30Z"),
) -> None:
    """The gold feature vector (features and labels) of the bar starting at --at."""
    import polars as pl

    from spxcast.errors import DataQualityError
    from spxcast.lake import Lake
    from spxcast.timeutil import parse_utc

    cfg = settings(ctx)
    ts = parse_utc(at)
    rows = (
        Lake.from_settings(cfg)
        .scan("gold.features")
        .filter(
            (pl.col("instrument") == cfg.instrument)
            & (pl.col("granularity") == cfg.granularity)
            & (pl.col("ts") == ts)
        )
        .collect()
    )
    if rows.is_empty():
        raise DataQualityError(
            f"gold.features has no {cfg.instrument} {cfg.granularity} bar starting at {ts.isoformat()} "
            "(weekend, break or halt, or outside the built range)"
        )
    table = Table(title=f"{cfg.instrument} {cfg.granularity} bar {ts.isoformat()}", title_justify="left")
    table.add_column("column", no_wrap=True, min_width=max(len(c) for c in rows.columns))
    table.add_column("value", justify="right", no_wrap=True)
    for name, value in rows.row(0, named=True).items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    print_table(table)


@app.command("docs")
@handle_errors
def docs(
    ctx: typer.Context,
    out: Path = typer.Option(Path("docs/features.md"), "--out", help="Markdown file to write"),
) -> None:
    """Write the feature catalog as Markdown (docs/features.md)."""
    from spxcast.features.catalog import default_catalog
    from spxcast.features.docs import catalog_markdown
    from spxcast.pipeline.tasks.features import feature_context

    context = feature_context(settings(ctx))
    catalog = default_catalog(context)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(catalog_markdown(catalog, context))
    console.print(f"wrote {out} ({len(catalog)} features)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="features")
