"""``spxcast models``: verbs are added by the issue that builds this capability."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """No verbs yet."""
