"""``spxcast news``: score articles and look at the latest ones."""

from __future__ import annotations

import typer

from spxcast.cli._common import console, handle_errors, settings
from spxcast.cli.render import print_table

app = typer.Typer(help="News sentiment: score articles, show recent ones.", no_args_is_help=True)


@app.command("score")
@handle_errors
def score(
    ctx: typer.Context,
    scorer: str | None = typer.Option(None, "--scorer", help="lexicon (default) or finbert"),
    model: str | None = typer.Option(
        None, "--model", help="Local model directory or cached hub id (finbert)"
    ),
    int8: bool | None = typer.Option(None, "--int8/--no-int8", help="int8 dynamic quantisation on CPU"),
    dtype: str | None = typer.Option(None, "--dtype", help="float32 (default) or bfloat16 (finbert)"),
) -> None:
    """Score every article not yet scored by the scorer (cached in silver.news_scores)."""
    from datetime import UTC, datetime

    from spxcast.lake import Lake
    from spxcast.sentiment import build_scorer
    from spxcast.sentiment.cache import score_news

    config = settings(
        ctx,
        **{
            "sentiment.scorer": scorer,
            "sentiment.finbert_model": model,
            "sentiment.quantize_int8": int8,
            "sentiment.dtype": dtype,
        },
    )
    result = score_news(Lake.from_settings(config), build_scorer(config.sentiment), datetime.now(UTC))
    console.print(f"scored [bold]{result['scored']}[/] new texts with {result['scorer_id']}")


@app.command("recent")
@handle_errors
def recent(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, help="Articles to show"),
) -> None:
    """The latest articles by received time, with their scores by the configured scorer."""
    from rich.table import Table

    from spxcast.lake import Lake
    from spxcast.sentiment import scorer_id
    from spxcast.sentiment.recent import recent_articles

    config = settings(ctx)
    frame = recent_articles(Lake.from_settings(config), scorer_id(config.sentiment), limit)
    table = Table(title=f"latest {frame.height} articles", title_justify="left")
    for column in ("received (UTC)", "score", "conf", "domain", "title"):
        table.add_column(column, justify="right" if column in ("score", "conf") else "left")
    for row in frame.iter_rows(named=True):
        score_value = row["score"]
        style = "green" if (score_value or 0) > 0.2 else "red" if (score_value or 0) < -0.2 else "white"
        table.add_row(
            f"{row['received_at']:%Y-%m-%d %H:%M}",
            f"[{style}]{score_value:+.2f}[/]" if score_value is not None else "—",
            f"{row['confidence']:.2f}" if row["confidence"] is not None else "—",
            row["domain"] or "",
            row["title"],
        )
    print_table(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="news")
