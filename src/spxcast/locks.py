"""Exclusive locks between processes on one machine, held on a lock file with ``flock``.

The kernel releases an ``flock`` when its holder exits, however it exits (``kill -9`` included), so a
crashed holder never leaves a stale lock behind: the next process simply gets it. The lock file's content
names the current holder (a free-text line written after acquiring) so that a refused caller can say who
holds it. Lock files are opened close-on-exec, so spawned worker processes do not inherit them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    """Raised by a non-blocking :func:`exclusive` when another process holds the lock.

    ``holder`` is the text the holder wrote into the lock file (may be empty when it has just started).
    """

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


@contextmanager
def exclusive(path: Path, *, blocking: bool = True, holder: str = "") -> Iterator[None]:
    """Hold the exclusive lock ``path`` (created with its folders) for the ``with`` block.

    Parameters
    ----------
    blocking
        Wait for the lock; with ``False``, raise :class:`LockHeld` at once when another process holds it.
    holder
        Written into the lock file while held (who holds it, for the message of a refused caller).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockHeld(path, _read(fd)) from None
        if holder:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        try:
            yield
        finally:
            if holder:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace").strip()
