"""``spxcast features``: build the feature tables, list the catalog, show one bar's vector, write the docs."""

from __future__ import annotations

from datetime import datetime
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
    from spxcast.pipeline.runs import new_run_id
    from spxcast.pipeline.tasks.features import build_features

    run_id = new_run_id("features")
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
    from spxcast.features.catalog import feature_catalog

    catalog = feature_catalog(settings(ctx))
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
    online: bool = typer.Option(
        False, "--online", help="Compute the row through the online path from bronze candles and scored news"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object {column: value}"),
) -> None:
    """The feature vector of the bar starting at --at: its gold row (features and labels), or with --online
    the features computed as serving computes them (equal to gold's on every feature)."""
    import polars as pl

    from spxcast.errors import DataQualityError
    from spxcast.lake import Lake
    from spxcast.lake.tables import GOLD_FEATURES
    from spxcast.timeutil import parse_utc

    cfg = settings(ctx)
    ts = parse_utc(at)
    lake = Lake.from_settings(cfg)
    if online:
        row = _online_row(cfg, lake, ts)
    else:
        row = (
            lake.series(GOLD_FEATURES.name, cfg.instrument, cfg.granularity)
            .filter(pl.col("ts") == ts)
            .collect()
        )
        if row.is_empty():
            raise DataQualityError(
                f"gold.features has no {cfg.instrument} {cfg.granularity} bar starting at {ts.isoformat()} "
                "(weekend, break or halt, or outside the built range)"
            )
    values = row.row(0, named=True)
    if as_json:  # times as ISO-8601; NaN as null (print_json)
        print_json({k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()})
        return
    source = "online" if online else "gold"
    table = Table(
        title=f"{cfg.instrument} {cfg.granularity} bar {ts.isoformat()} ({source})", title_justify="left"
    )
    table.add_column("column", no_wrap=True, min_width=max(len(c) for c in row.columns))
    table.add_column("value", justify="right", no_wrap=True)
    for name, value in values.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    print_table(table)


def _online_row(cfg: Any, lake: Any, ts: Any) -> Any:
    """The online row of the configured series' bar at ``ts`` (instrument, granularity, ts + features)."""
    import polars as pl

    from spxcast.features.catalog import feature_catalog, feature_context
    from spxcast.features.online import history_need, online_row
    from spxcast.lake.online import online_inputs
    from spxcast.sentiment import scorer_id

    catalog = feature_catalog(cfg)
    bars, articles = online_inputs(
        lake, cfg.instrument, cfg.granularity, ts, history_need(catalog), scorer_id(cfg.sentiment)
    )
    row = online_row(bars, articles, catalog, feature_context(cfg))
    return row.select(
        pl.lit(cfg.instrument).alias("instrument"), pl.lit(cfg.granularity).alias("granularity"), pl.all()
    )


@app.command("docs")
@handle_errors
def docs(
    ctx: typer.Context,
    out: Path = typer.Option(Path("docs/features.md"), "--out", help="Markdown file to write"),
) -> None:
    """Write the feature catalog as Markdown (docs/features.md)."""
    from spxcast.features.catalog import default_catalog, feature_context
    from spxcast.features.docs import catalog_markdown

    context = feature_context(settings(ctx))
    catalog = default_catalog(context)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(catalog_markdown(catalog, context))
    console.print(f"wrote {out} ({len(catalog)} features)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="features")
