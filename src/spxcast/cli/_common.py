"""What every CLI verb shares: building Settings from the global options, error mapping, progress bars."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from spxcast.config import Settings, load_settings
from spxcast.errors import SpxcastError, redact

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class GlobalOptions:
    """Options given before the verb (``spxcast --home DIR train``)."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Effective settings: defaults < spxcast.toml < env < global flags < this verb's flags."""
    options: GlobalOptions = ctx.find_root().obj or GlobalOptions()
    return load_settings(options.config_file, **{**options.overrides, **overrides})


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(exit_code)


def handle_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Map spxcast errors to a one-line message and exit code; unexpected ones say how to get details."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except SpxcastError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted; committed lake writes are kept, rerun to continue", 130) from None
        except Exception as exc:
            if debugging():
                raise
            raise fail(
                f"unexpected {type(exc).__name__}: {redact(str(exc))} (rerun with --debug for the traceback)",
                70,
            ) from None

    return wrapper


def debugging() -> bool:
    """Whether ``--debug`` was given (tracebacks and full details are shown)."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def redact_log_record(record: logging.LogRecord) -> bool:
    """Log filter: the formatted message without secrets (:func:`spxcast.errors.redact`)."""
    record.msg, record.args = redact(record.getMessage()), None
    return True


def outputs_line(outputs: Mapping[str, Any]) -> str:
    """A task's outputs as one line, ``key=value`` for its scalar entries (tables, versions, counts)."""
    return ", ".join(f"{k}={v}" for k, v in outputs.items() if isinstance(v, str | int | float | bool | None))


@contextmanager
def progress(transient: bool = False) -> Iterator[Progress]:
    """A rich progress display on stderr (quiet when stderr is not a terminal)."""
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=transient, disable=not sys.stderr.isatty()) as bar:
        yield bar
