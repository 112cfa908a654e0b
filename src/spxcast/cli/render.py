"""Output for people and for machines: tables that never cut a figure, JSON documents, progress bars.

Tables: on a terminal a table is printed at least as wide as its unbreakable content needs (text columns
wrap at spaces; a figure is never shortened to ``0.…``, the terminal wraps the line instead); when stdout
is a file or a pipe it is printed at its natural width, whatever ``COLUMNS`` says, so redirected output
holds every figure in full. ``--json``: exactly one JSON document on stdout (non-finite floats become
``null``); messages and progress go to stderr.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import Progress, TaskID
from rich.segment import Segments
from rich.table import Table

from spxcast.cli._common import console
from spxcast.progress import ProgressCallback

_UNBOUNDED = 1_000_000


def table_width(table: Table, out: Console) -> int:
    """Columns to render ``table`` in: its natural width off a terminal, else at least its minimum."""
    measured = Measurement.get(out, out.options.update_width(_UNBOUNDED), table)
    if not out.is_terminal:
        return measured.maximum
    return max(out.width, measured.minimum)


def print_table(table: Table, out: Console | None = None) -> None:
    """Print ``table`` without truncating any cell (see the module docstring)."""
    out = out or console
    width = table_width(table, out)
    if width <= out.width:
        out.print(table)
        return
    # Console.print clamps its width to the console's: render at our width and write the lines uncropped.
    out.print(Segments(out.render(table, out.options.update_width(width))), crop=False)


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` and tuples as lists (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def print_json(document: Any) -> None:
    """Print one JSON document on stdout: plain text, no colour, no wrapping, nothing else."""
    typer.echo(json.dumps(json_ready(document), indent=2, default=str, allow_nan=False))


def bar_per_message(bar: Progress) -> ProgressCallback:
    """A progress callback that draws one bar per distinct message (e.g. one per tuning stage)."""
    tasks: dict[str, TaskID] = {}

    def show(done: int, total: int | None, message: str) -> None:
        if message not in tasks:
            tasks[message] = bar.add_task(message, total=total)
        bar.update(tasks[message], completed=done, total=total)

    return show
