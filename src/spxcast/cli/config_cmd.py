"""``spxcast config``: the effective configuration."""

from __future__ import annotations

import json

import typer

from spxcast.cli._common import console, handle_errors, settings
from spxcast.config import effective_config

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@app.command("show")
@handle_errors
def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Print the effective configuration (defaults < spxcast.toml < env < flags), secrets masked."""
    config = effective_config(settings(ctx))
    if as_json:
        console.print_json(json.dumps(config, default=str))
        return
    from rich.tree import Tree

    tree = Tree("[bold]spxcast configuration")

    def add(node: Tree, value: dict[str, object]) -> None:
        for key, item in value.items():
            if isinstance(item, dict):
                add(node.add(f"[cyan]{key}"), item)
            else:
                node.add(f"[cyan]{key}[/] = {item!r}")

    add(tree, config)
    console.print(tree)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
