"""Rust panic reports of third-party libraries (deltalake, polars) kept off the terminal.

A panic inside a Rust library prints its report (``thread '…' panicked at …``, the message, a backtrace
when ``RUST_BACKTRACE`` asks for one, and a closing ``note:`` line) straight to file descriptor 2, even
when the library recovers or the panic becomes a Python exception that spxcast wraps into a clear error
(a full disk did both). The CLI entry point routes descriptor 2 through a relay thread that sends panic
reports to the debug log and passes everything else on unchanged. Python's own stderr (messages,
progress bars) is moved to a duplicate of the terminal's descriptor and bypasses the relay. Spawned
worker processes inherit descriptor 2, so their native panics are filtered too. ``--debug`` skips all
of this.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

log = logging.getLogger(__name__)

_PANIC_START = re.compile(rb"^thread '[^']*'( \(\d+\))? panicked at ")
_PANIC_END = re.compile(rb"^note: ")


def filter_native_panics() -> None:
    """Route descriptor 2 through the panic filter for the rest of this process (call once, early)."""
    os.environ["RUST_BACKTRACE"] = "0"  # short reports, always closed by a "note:" line
    sys.stderr.flush()
    terminal = os.dup(2)
    sys.stderr = open(  # noqa: SIM115 - lives as long as the process
        terminal,
        "w",
        buffering=1,
        encoding=sys.stderr.encoding or "utf-8",
        errors="backslashreplace",
        closefd=False,
    )
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    relay = threading.Thread(target=_relay, args=(read, terminal), name="native-stderr", daemon=True)
    relay.start()
    atexit.register(_restore, terminal, relay)


def _relay(read: int, terminal: int) -> None:
    in_panic = False
    with open(read, "rb", closefd=True) as lines:
        for line in lines:
            if not in_panic and _PANIC_START.match(line):
                in_panic = True
            if not in_panic:
                os.write(terminal, line)
                continue
            log.debug("third-party panic report: %s", line.decode(errors="replace").rstrip())
            if _PANIC_END.match(line):
                in_panic = False


def _restore(terminal: int, relay: threading.Thread) -> None:
    """At exit: put the terminal back on descriptor 2 and let the relay pass on what is left."""
    sys.stderr.flush()
    os.dup2(terminal, 2)  # closes this process's end of the pipe: the relay sees the end of its input
    relay.join(timeout=2)
