"""``spxcast ingest news``."""

from __future__ import annotations

from pathlib import Path

import typer

from spxcast.cli._common import console, handle_errors, settings
from spxcast.errors import ConfigError


def _mapping(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ConfigError(f"--map expects BRONZE=FILE_COLUMN (e.g. title=headline), got {pair!r}")
        mapping[name.strip()] = column.strip()
    return mapping


@handle_errors
def news(
    ctx: typer.Context,
    source: str | None = typer.Option(
        None, "--source", help="synthetic (default), gdelt, rss or files", show_default=False
    ),
    start: str | None = typer.Option(None, "--start", help="Backfill start (UTC, ISO-8601)"),
    end: str | None = typer.Option(None, "--end", help="Backfill end (UTC, exclusive)"),
    file: Path | None = typer.Option(None, "--file", help="CSV or JSONL archive for --source files"),
    mapping: list[str] = typer.Option(
        [], "--map", help="BRONZE=FILE_COLUMN, repeatable (url, title, summary, published_at, received_at, …)"
    ),
) -> None:
    """Fetch news from a source, drop irrelevant and duplicate articles, write bronze.news."""
    from spxcast.ingest.news import ingest_news
    from spxcast.lake import Lake

    config = settings(
        ctx,
        **{
            "news.source": source,
            "news.start": start,
            "news.end": end,
            "news.files_path": str(file) if file else None,
            "news.columns": _mapping(mapping),
        },
    )
    result = ingest_news(config, Lake.from_settings(config))
    console.print(
        f"[bold]{result['source']}[/]: {result['input']} records → [green]{result['accepted']} accepted[/], "
        f"{result['duplicates']} duplicates, {result['irrelevant']} irrelevant, "
        f"[red]{result['quarantined']} quarantined[/] (bronze.news v{result['versions']['bronze.news']})"
    )
    if result.get("feed_errors"):
        for feed, error in result["feed_errors"].items():
            console.print(f"[red]feed failed[/] {feed}: {error}")
