"""Child processes that end with their parent (the runner's task workers, tuning's trial workers)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PARENT_POLL_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Call first in a child process: end this process as soon as its parent ``parent_pid`` is gone.

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and
    as a fallback, a daemon thread checks every second whether the parent changed (an orphan is adopted
    by another process). A task killed this way loses only its uncommitted work: lake writes are atomic.
    The kernel ties the signal to the thread that started the child: start children from a thread that
    lives as long as they should (as :func:`spxcast.pipeline.runner.run_dag` does, submitting from its
    caller's thread).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            log.debug("prctl(PR_SET_PDEATHSIG) unavailable; relying on the parent watchdog")
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)
