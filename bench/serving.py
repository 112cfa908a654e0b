"""Benchmark: ``POST /predict`` (latest closed bar) of a real ``spxcast serve`` process on loopback.

An open-loop load generator (asyncio, raw HTTP/1.1 over a pool of keep-alive connections) sends request i
at its scheduled time ``t0 + i / rate`` whatever happened to earlier ones, and measures each latency from
that scheduled time: a stalled server is charged for the requests it delayed (no coordinated omission).

1. ``--seconds`` (60) at ``--rate`` (1,000 req/s): p50/p99/p99.9, errors, prediction rows logged vs
   requests answered, server CPU and RSS.
2. A ramp (10 s steps: 250, 500, 750, 1,000, then +500 up to 4,000, ...) up to the first rate whose p99
   exceeds 50 ms or that has errors; the maximum is the highest rate before it.

The served home is built like the serving tests' (synthetic gold, a real LightGBM version trained and
registered, then deployed), unless ``--home`` names one whose registry has a champion.

    python bench/serving.py [--rate 1000] [--seconds 60] [--step-seconds 10] [--workers 1] [--home DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

GOALS = {
    "p99_ms_at_1000": 5.0,
    "p999_ms_at_1000": 25.0,
    "errors": 0,
    "lost_rows": 0,
    "max_rate_at_p99_50ms": 3000,
}
CONNECTIONS = 128
RAMP = (250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 3500.0, 4000.0, 5000.0, 6000.0, 8000.0)
BODY = json.dumps({"instrument": "SPX500_USD"}).encode()


SLOW_SECOND_MS = 5.0  # the goal's p99


def request_bytes(port: int) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


ID_KEY = b'"prediction_id":"'


class Connections:
    """Up to ``limit`` keep-alive connections (wrk2-style fixed pool); a request waits for a free one, and
    the wait counts in its latency (measured from its scheduled send time)."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.limit = limit
        self.opened = 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.limit:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.idle.get()

    def give(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if connection is None:
            self.opened -= 1  # broken: a new one may be opened
        else:
            self.idle.put_nowait(connection)

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


async def _one(pool: Connections, payload: bytes) -> tuple[int, bytes]:
    connection = await pool.take()
    reader, writer = connection
    try:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(length)
    except BaseException:
        writer.close()
        pool.give(None)
        raise
    pool.give(connection)
    return status, body


async def constant_rate(port: int, rate: float, seconds: float, ids: set[str]) -> dict[str, float]:
    """Send ``rate * seconds`` requests on schedule; latency from the scheduled send time (ms). The ids of
    answered predictions are added to ``ids``."""
    pool = Connections(port, CONNECTIONS)
    payload = request_bytes(port)
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def fire(i: int, due: float) -> None:
        nonlocal errors
        try:
            status, body = await _one(pool, payload)
            if status != 200:
                errors += 1
            else:
                at = body.index(ID_KEY) + len(ID_KEY)
                ids.add(body[at : at + 36].decode())
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
            errors += 1
        latencies[i] = (loop.time() - due) * 1000

    # The generator must not stall on its own: only requests in flight are kept (a list of every task made
    # its garbage collector's full passes grow with the run, tens of ms each, charged to the server as
    # latency), and its collector is off while it sends.
    in_flight: set[asyncio.Future[None]] = set()
    gc.disable()
    try:
        for i in range(n):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(fire(i, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        while in_flight:
            await asyncio.gather(*in_flight)
    finally:
        gc.enable()
    pool.close()
    done = latencies[np.isfinite(latencies)]
    # Where in the run the tail sits: the p99 of each second of scheduled sends (a warm-up or a periodic
    # stall shows as a few bad seconds).
    per_second = [
        float(np.nanpercentile(chunk, 99))
        for chunk in np.array_split(latencies, max(1, round(seconds)))
        if np.isfinite(chunk).any()
    ]
    slow_seconds = [i for i, p99 in enumerate(per_second) if p99 > SLOW_SECOND_MS]
    return {
        "rate": rate,
        "sent": n,
        "errors": errors,
        "p50_ms": float(np.percentile(done, 50)),
        "p99_ms": float(np.percentile(done, 99)),
        "p999_ms": float(np.percentile(done, 99.9)),
        "achieved_rate": n / (loop.time() - start),
        "seconds_with_p99_over_5ms": slow_seconds,
    }


def served_home(root: Path) -> tuple[Path, int]:
    from serving_factories import build_home

    home = build_home(root, ("lightgbm",), rows=20_000)
    return home.settings.home, home.versions["lightgbm"]


def main() -> None:
    import httpx
    import psutil
    from sqlalchemy import create_engine, select

    from spxcast.db import PredictionRecord

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--max-rate", type=float, default=8000)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        version = None
        home = args.home
        if home is None:
            home, version = served_home(Path(scratch) / "served")
        port = 18000 + os.getpid() % 1000
        db = Path(scratch) / "app.db"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "SPXCAST_HOME": str(home),
            "SPXCAST_DB__URL": f"sqlite:///{db}",
            "SPXCAST_SERVING__ADMIN_KEY": "bench",
            "SPXCAST_SERVING__SPOOL_PATH": str(Path(scratch) / "spool.ndjson"),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spxcast.cli.main",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            if version is not None:
                deployed = httpx.post(
                    f"{base}/admin/deploy",
                    json={"version": version, "reason": "bench"},
                    headers={"X-Admin-Key": "bench"},
                    timeout=120,
                )
                deployed.raise_for_status()
                time.sleep(6)  # other workers follow the audited slot state within serving.feature_refresh_s
            ids: set[str] = set()
            asyncio.run(constant_rate(port, 200, 2, ids))  # warm-up
            process = psutil.Process(server.pid)
            tree = [process, *process.children(recursive=True)]
            cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in tree)
            steady = asyncio.run(constant_rate(port, args.rate, args.seconds, ids))
            cpu_after = sum(p.cpu_times().user + p.cpu_times().system for p in tree)
            steady["server_cpu_cores"] = (cpu_after - cpu_before) / args.seconds
            # CPU time per answered request (all server processes and threads, log writer included): the
            # figure that contention on a shared machine distorts least.
            steady["server_cpu_us_per_request"] = 1e6 * (cpu_after - cpu_before) / steady["sent"]
            steady["server_rss_mib"] = sum(p.memory_info().rss for p in tree) / 2**20
            print(json.dumps({"steady": steady}), flush=True)
            ramp = []
            for rate in RAMP:
                if rate > args.max_rate:
                    break
                step = asyncio.run(constant_rate(port, rate, args.step_seconds, ids))
                ramp.append(step)
                print(json.dumps({"ramp": step}), flush=True)
                if step["p99_ms"] > 50 or step["errors"]:
                    break
            passing = [s["rate"] for s in ramp if s["p99_ms"] <= 50 and not s["errors"]]
            time.sleep(2)  # the write-behind log flushes every 0.2 s
            engine = create_engine(f"sqlite:///{db}")
            with engine.connect() as connection:
                logged = set(connection.scalars(select(PredictionRecord.prediction_id)).all())
            summary = {
                "sent": 400 + sum(s["sent"] for s in [steady, *ramp]),
                "answered": len(ids),
                "logged_rows": len(logged),
                "lost_rows": len(ids - logged),
                "max_rate_at_p99_50ms": max(passing) if passing else None,
                "load_average": os.getloadavg(),
                "goals": GOALS,
            }
            print(json.dumps({"summary": summary}), flush=True)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
