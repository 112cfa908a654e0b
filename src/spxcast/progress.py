"""Progress of long work, for whoever shows it: library code reports, entry points draw.

A :data:`ProgressCallback` receives ``(done, total, message)``: ``done`` units out of ``total``
(``None`` when unknown) of the work ``message`` names, the same shape as ingestion's ``on_progress``.
Work that the task runner separates from the command line (Optuna trials inside a training task) reports
through :func:`report`, which calls the callback an entry point installed with :func:`reporting` for the
current context; without one it does nothing. Library code never imports a user interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ProgressCallback = Callable[[int, int | None, str], None]

_listener: ContextVar[ProgressCallback | None] = ContextVar("spxcast_progress", default=None)


@contextmanager
def reporting(callback: ProgressCallback) -> Iterator[None]:
    """Send :func:`report` calls made inside the ``with`` block (same thread or task) to ``callback``."""
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


def listening() -> bool:
    """Whether a callback is installed (lets callers skip work done only to report)."""
    return _listener.get() is not None


def report(done: int, total: int | None, message: str) -> None:
    """Report ``done`` of ``total`` units of ``message`` to the installed callback, if any."""
    callback = _listener.get()
    if callback is not None:
        callback(done, total, message)
