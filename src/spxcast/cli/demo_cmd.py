"""``spxcast demo serving``: the serving part of ``make demo``, bounded in bars and time.

It replays the newest stored session through the real API (``spxcast serve --live --replay FROM TO`` on
127.0.0.1 and a free port, a child process), prints the served predictions with their intervals and the
realised outcomes as the market stream delivers them, stops the API (which flushes its prediction log),
runs one monitoring pass as of the replay's end (``spxcast monitor run --at END``) and says where to look
next. The API serves the registry's champion (or the newest audited slot state), as ``spxcast serve``
always does at start; without a champion there is nothing to serve and the demo says so.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import typer

from spxcast.cli._common import GlobalOptions, console, handle_errors, settings
from spxcast.config import CONFIG_FILE_ENV, Settings
from spxcast.errors import SpxcastError

demo_app = typer.Typer(help="The demo's serving part: a replayed session served, streamed and monitored.")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")


@demo_app.callback()
def _group() -> None:
    """Demo steps (``make demo`` runs the pipeline, then ``spxcast demo serving``)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _child_env(ctx: typer.Context, cfg: Settings) -> dict[str, str]:
    """The environment of the child commands: this process's settings sources, global flags included."""
    env = {**os.environ, "SPXCAST_HOME": str(cfg.home.resolve())}
    env.update({"SPXCAST_INSTRUMENT": cfg.instrument, "SPXCAST_GRANULARITY": cfg.granularity})
    options: GlobalOptions = ctx.find_root().obj or GlobalOptions()
    if options.config_file is not None:
        env[CONFIG_FILE_ENV] = str(options.config_file.resolve())
    return env


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}%"


def _wait_until_up(process: subprocess.Popen[bytes], base: str, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SpxcastError(f"the API exited with code {process.returncode} before it answered")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                ready = httpx.get(f"{base}/ready", timeout=5).json()
                problems = [p for p in ready.get("problems", []) if p.startswith("no model loaded")]
                if problems:
                    raise SpxcastError(f"the API cannot serve: {problems[0]}")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SpxcastError(f"the API did not answer on {base} within {timeout_s:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for the API (graceful: the live loop stops, the prediction log is flushed), then a kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Printer:
    """Prints every ``every``-th bar's served prediction, and the realised outcome of each printed bar."""

    def __init__(self, every: int, horizon_minutes: int) -> None:
        self.every, self.horizon = every, horizon_minutes
        self.seen = 0
        self.printed: set[str] = set()

    def __call__(self, frame: dict[str, Any], served: dict[str, Any] | None) -> None:
        if served is None:
            return
        clock = datetime.fromisoformat(frame["ts"]).strftime("%m-%d %H:%M")
        lower, upper = served.get("lower_pct"), served.get("upper_pct")
        if frame["type"] == "bar":
            if self.seen % self.every == 0:
                self.printed.add(frame["ts"])
                level = served.get("level")
                console.print(
                    f"  bar {clock}  close {frame['close']:.2f}  predicted {_pct(served['predicted_pct'])} "
                    f"in {self.horizon} min, interval [{_pct(lower)}, {_pct(upper)}]"
                    + (f" at {level:.0%}" if level else "")
                    + f"  (v{served['model_version']}, {served['slot']} slot)",
                    highlight=False,
                    soft_wrap=True,
                )
            self.seen += 1
        elif frame["ts"] in self.printed:
            realised = frame["realised_pct"]
            where = (
                ""
                if lower is None or upper is None
                else ("  inside the interval" if lower <= realised <= upper else "  OUTSIDE the interval")
            )
            console.print(
                f"      outcome of {clock}: realised {_pct(realised)} vs predicted "
                f"{_pct(served['predicted_pct'])}{where}",
                highlight=False,
                soft_wrap=True,
            )


@contextmanager
def _api(command: list[str], env: dict[str, str], base: str) -> Iterator[None]:
    """The API as a child process until the block ends (then stopped gracefully)."""
    process = subprocess.Popen([sys.executable, "-m", "spxcast.cli.main", *command], env=env)
    try:
        _wait_until_up(process, base, timeout_s=120)
        yield
    finally:
        _stop(process)


@demo_app.command("serving")
@handle_errors
def serving(
    ctx: typer.Context,
    show: int = typer.Option(20, "--show", min=1, help="Bars printed (evenly spread over the session)"),
    timeout: float = typer.Option(240.0, "--timeout", min=10, help="Seconds the stream is watched at most"),
    speed: str = typer.Option(
        "3000x",
        "--speed",
        help="Replay speed (market time per second): 3000x plays a session in about half a minute, so the "
        "stream can be watched from its first bars; max is faster than a client connecting",
    ),
) -> None:
    """Serve a replay of the newest stored session; print predictions and outcomes; monitor; stop."""
    from spxcast.db import connect
    from spxcast.lake import Lake
    from spxcast.registry import CHAMPION, ModelRegistry
    from spxcast.serving.demo import newest_session, rewind_position, watch

    cfg = settings(ctx)
    registry = ModelRegistry(cfg)
    champion = registry.by_alias(CHAMPION) if registry.exists() else None
    if champion is None:
        console.print(
            "serving demo skipped: the registry has no champion (the promotion gates refused the "
            "candidate; see `spxcast models summary`). A model that does not beat the zero forecast "
            "is not served.",
            highlight=False,
            soft_wrap=True,
        )
        return
    session = newest_session(Lake.from_settings(cfg), cfg.instrument, cfg.granularity, cfg.calendar)
    engine = connect(cfg.db_url(), cfg.db.sqlite_busy_timeout_ms)
    rewound = rewind_position(engine, cfg.instrument, cfg.granularity, session.start)
    if rewound is not None:
        console.print(
            f"(the series' live position was {_iso(rewound)}: rewound to replay the session again)",
            highlight=False,
            soft_wrap=True,
        )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    replay = [_iso(session.start), _iso(session.end)]
    command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--live", "--replay", *replay]
    command += ["--speed", speed]
    console.print(
        f"\n[bold]Serving[/] champion v{champion.version}: a replay of the newest session, {session.bars} "
        f"bars\n$ spxcast {' '.join(command)}",
        highlight=False,
        soft_wrap=True,
    )
    env = _child_env(ctx, cfg)
    started = time.monotonic()
    printer = _Printer(max(1, math.ceil(session.bars / show)), cfg.horizon_minutes)
    with _api(command, env, base):
        console.print(
            f"Served predictions (every {printer.every}th bar) and realised outcomes, as "
            f"{base}/ws/market-stream streams them:",
            highlight=False,
            soft_wrap=True,
        )
        tally = watch(base, cfg.instrument, session.last_bar, printer, timeout_s=timeout)
    console.print(
        f"streamed {tally.bars} of {session.bars} bars with a served prediction and {tally.outcomes} "
        f"realised outcomes in {time.monotonic() - started:.0f}s; realised inside the interval "
        f"{_share(tally.coverage)}, direction right {_share(tally.hit_rate)}",
        highlight=False,
        soft_wrap=True,
    )
    if tally.bars < session.bars:
        console.print(
            f"({session.bars - tally.bars} bars were served while no client watched the stream; the "
            "prediction log has every one)",
            highlight=False,
            soft_wrap=True,
        )
    monitor = ["monitor", "run", "--at", replay[1]]
    console.print(
        f"\n[bold]Monitoring[/] the served rows as of the replay's end\n$ spxcast {' '.join(monitor)}",
        highlight=False,
        soft_wrap=True,
    )
    done = subprocess.run([sys.executable, "-m", "spxcast.cli.main", *monitor], env=env, check=False)
    if done.returncode != 0:
        raise SpxcastError(f"the monitoring pass failed (exit code {done.returncode})")
    console.print(
        "\n[bold]Where to look next[/]\n"
        "  make up   the API (http://127.0.0.1:8000/docs) and the dashboard (http://127.0.0.1:8501) on this "
        "home: the predictions just logged, realised skill, drift, alerts, the slots and the registry; "
        f"REPLAY='FROM TO' streams stored bars after {replay[1]} (the live loop's position is there now)\n"
        "  spxcast monitor alerts | spxcast models summary | spxcast pipeline status\n"
        "  docs/operations.md: deploy, shadow, promote, rollback, alerts, backfill, scaling out, backup",
        highlight=False,
        soft_wrap=True,
    )


def _share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"
