"""Benchmark: the live loop end to end, from a candle's arrival to the WebSocket frame at a client.

Home: tests/live_factories.py (five synthetic trading days of M1 bars with synthetic news, gold built by
the batch path, one registered LightGBM version reading 16 market, lag and news features). The API runs
under uvicorn in this process (``create_app(server=True)`` with the live feature source, as ``spxcast
serve`` runs it: heap frozen, 0.5 ms GIL switch interval); a WebSocket client runs in its own process and
records, for every ``bar`` frame, ``time.time()`` at receipt minus the frame's ``arrived_at`` (when the loop
got the candle from its source). Each bar goes through validation (``validate_candles``; a replay's bars
are bronze's own rows, so they are not merged into bronze again), the online row, the prediction, the log
+ position transaction (SQLite app database), the in-memory feature source, the feature store push
(background thread) and the publisher.

Two deployments: ``sqlite`` is ``spxcast serve --live`` (the loop inside the API process, frames through its
hub, Feast SQLite online store); ``redis`` is the team-scale one: ``spxcast live`` in its own (spawned)
process with the same interpreter settings, Feast Redis online store, frames and vectors published to Redis
pub/sub and relayed by the API's RedisRelay to its hub and feature source.
Two pacings: ``max`` (the replay as fast as it goes, 64 bars per poll: throughput, bars/s) and ``paced``
(one bar per poll at 5 bars/s, as live: candle-to-frame latency without queueing behind a batch; 300 bars,
so that p99 is the third-worst frame, not the worst of 100).

    python bench/live.py [--days 2] [--runs 3] [--stores sqlite,redis] [--pacings max,paced]
                         [--paced-bars 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the test home factory

GOALS = {"bars_per_s": 500.0, "p99_ms": 20.0}

CLIENT = """
import asyncio, json, sys, time, websockets
async def main(url, n, out):
    latencies = []
    async with websockets.connect(url, max_queue=None) as ws:
        print("ready", flush=True)
        while len(latencies) < n:
            frame = json.loads(await ws.recv())
            if frame["type"] == "bar":
                latencies.append(time.time() - frame["arrived_at"])
    open(out, "w").write(json.dumps(latencies))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""


def _server(app: Any) -> tuple[Any, int]:
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def _replay(
    service: Any, settings: Any, start: Any, end: Any, speed: float | None, publisher: Any, vectors: bool
) -> tuple[int, float]:
    """Run the live loop over the stored range; returns (bars, seconds of ``run``)."""
    from spxcast.sentiment import scorer_id
    from spxcast.serving.live.loop import LiveLoop
    from spxcast.serving.live.news import StoredArticles
    from spxcast.serving.live.runtime import feature_sink
    from spxcast.serving.live.sources import ReplaySource

    lake = service.source.lake
    source = ReplaySource(
        lake, settings.instrument, settings.granularity, start, end, speed, batch=64 if speed is None else 1
    )
    articles = StoredArticles(lake, scorer_id(settings.sentiment), start - timedelta(days=30), end)
    loop = LiveLoop(
        settings,
        service,
        source,
        publisher,
        articles=articles,
        sink=feature_sink(settings),
        publish_vectors=vectors,
    ).start()
    began = time.perf_counter()
    stats = loop.run()
    elapsed = time.perf_counter() - began
    loop.close()  # the commit thread, the feature store pusher, the Redis sender (after what it queued)
    return stats.bars, elapsed


def loop_process(settings: Any, start: Any, end: Any, speed: float | None, results: Any) -> None:
    """``spxcast live`` publishing through Redis, in its own process (spawned): the same interpreter settings,
    the same loop, its vectors and frames on the channel the API's relay reads."""
    from spxcast.serving.app import tune_as_server
    from spxcast.serving.live.hub import RedisPublisher
    from spxcast.serving.live.runtime import build_live_service

    service = build_live_service(settings)
    tune_as_server(service)
    service.start(background=False)
    publisher = RedisPublisher(settings.live.redis_url, settings.live.channel)
    try:
        results.put(_replay(service, settings, start, end, speed, publisher, vectors=True))
    finally:
        service.close()


def run_once(home: Any, store: str, pacing: str, days: int, paced_bars: int, tmp: Path) -> dict[str, Any]:
    import multiprocessing

    import polars as pl

    from spxcast.serving.app import create_app
    from spxcast.serving.live.hub import RedisRelay
    from spxcast.serving.live.runtime import build_live_service

    redis_url = "redis://127.0.0.1:6379/0"
    live = home.settings.live.model_copy(
        update={"feature_store": store, "redis_url": redis_url if store == "redis" else None}
    )
    settings = home.app_settings(tmp, live=live)
    end = home.replay_end
    start = end - timedelta(days=days) if pacing == "max" else end - timedelta(minutes=paced_bars)
    bars = home.gold.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).height
    service = build_live_service(settings)
    app = create_app(settings, service, server=True)  # as `spxcast serve` runs it
    server, port = _server(app)
    out = tmp / "latencies.json"
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, f"ws://127.0.0.1:{port}/ws/market-stream", str(bars), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    speed = None if pacing == "max" else 300.0  # 5 M1 bars per second
    relay = None
    if store == "redis":  # a replica relaying what `spxcast live` (another process) publishes
        relay = RedisRelay(redis_url, settings.live.channel, app.state.hub, service.source.push_frame).start()
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(target=loop_process, args=(settings, start, end, speed, results))
        child.start()
        done, elapsed = results.get(timeout=900)
        child.join(60)
    else:  # `spxcast serve --live`: the loop in the API process, frames through its hub
        done, elapsed = _replay(service, settings, start, end, speed, app.state.hub, vectors=False)
    client.wait(120)
    latencies = sorted(json.loads(out.read_text()))
    if relay is not None:
        relay.close()
    server.should_exit = True
    time.sleep(0.5)
    service.close()

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "store": store,
        "pacing": pacing,
        "bars": done,
        "bars_per_s": done / elapsed if pacing == "max" else None,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": 1000 * latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--pacings", default="max,paced")
    parser.add_argument("--paced-bars", type=int, default=300, help="bars of a paced run (5 per second)")
    args = parser.parse_args()
    import os

    from live_factories import build_live_home

    print(f"machine: {os.cpu_count()} cores; load: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as scratch:
        home = build_live_home(Path(scratch))
        results: list[dict[str, Any]] = []
        for store in args.stores.split(","):
            for pacing in args.pacings.split(","):
                for run in range(args.runs):
                    tmp = Path(scratch) / f"{store}-{pacing}-{run}"
                    tmp.mkdir()
                    result = run_once(home, store, pacing, args.days, args.paced_bars, tmp)
                    print(json.dumps(result), flush=True)
                    results.append(result)
        print("\nmedian of runs (goals: replay >= 500 bars/s, candle -> frame p99 <= 20 ms)")
        print(f"{'store':7} {'pacing':6} {'bars':>6} {'bars/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for store in args.stores.split(","):
            for pacing in args.pacings.split(","):
                group = [r for r in results if r["store"] == store and r["pacing"] == pacing]
                rate = [r["bars_per_s"] for r in group if r["bars_per_s"] is not None]
                print(
                    f"{store:7} {pacing:6} {group[0]['bars']:>6} "
                    f"{statistics.median(rate) if rate else float('nan'):>8.0f} "
                    f"{statistics.median(r['p50_ms'] for r in group):>8.1f} "
                    f"{statistics.median(r['p99_ms'] for r in group):>8.1f} "
                    f"{statistics.median(r['max_ms'] for r in group):>8.1f}"
                )
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
