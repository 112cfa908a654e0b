"""Peak resident memory of the running process, sampled while a block runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def peak_rss() -> Iterator[Callable[[], float]]:
    """Sample this process's RSS every 5 ms; yields a function returning the peak so far (GB, 1e9 bytes)."""
    import psutil

    process = psutil.Process()
    peak = [process.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            stop.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0] / 1e9
    finally:
        stop.set()
        thread.join()
