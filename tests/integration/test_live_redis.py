"""A loop in its own process publishing through Redis pub/sub to API replicas: each replica's relay hands
the bar frames, in order, to its WebSocket hub and the vectors to its feature source (real Redis); and
``spxcast serve --workers 2`` with ``live.redis_url``: every worker relays the stream to its clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from services import REDIS_HOST, REDIS_PORT, require_port
from spxcast.serving.live.hub import RedisPublisher, RedisRelay, StreamHub

pytestmark = pytest.mark.integration


def test_frames_reach_every_replica_in_order_and_vectors_reach_the_feature_source() -> None:
    require_port("Redis", REDIS_HOST, REDIS_PORT)
    url, channel = f"redis://{REDIS_HOST}:{REDIS_PORT}/0", f"spxcast-test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[list[int]], list[dict[str, object]]]:
        vectors: list[dict[str, object]] = []
        hubs = [StreamHub(capacity=100), StreamHub(capacity=100)]
        subscribers = [hub.subscribe(frozenset({"SPX500_USD"})) for hub in hubs]
        relays = [RedisRelay(url, channel, hub, vectors.append).start() for hub in hubs]
        await asyncio.sleep(0.3)  # subscriptions are live
        publisher = RedisPublisher(url, channel)
        try:
            for i in range(30):
                publisher.publish({"type": "vector", "instrument": "SPX500_USD", "ts": i, "values": [i]})
                publisher.publish({"type": "bar", "instrument": "SPX500_USD", "ts": i})
                publisher.publish({"type": "bar", "instrument": "EUR_USD", "ts": i})
            received: list[list[int]] = []
            for subscriber in subscribers:
                got = [json.loads(await asyncio.wait_for(subscriber.queue.get(), 5))["ts"] for _ in range(30)]
                received.append(got)
        finally:
            publisher.close()
            for relay in relays:
                relay.close()
        assert publisher.sent == 90 and publisher.failed == 0
        return received, vectors

    received, vectors = asyncio.run(scenario())
    assert received == [list(range(30)), list(range(30))], (
        "every replica: every bar of its instrument, in order"
    )
    assert len(vectors) == 60 and all(v["type"] == "vector" for v in vectors), (
        "vectors go to the feature source"
    )


def test_an_unreachable_redis_neither_blocks_nor_stops_the_publisher_and_frames_are_counted_lost() -> None:
    publisher = RedisPublisher(f"redis://127.0.0.1:{_free_port()}/0", "spxcast-test-nowhere")
    began = time.monotonic()
    for i in range(3):
        publisher.publish({"type": "bar", "instrument": "SPX500_USD", "ts": i})
    assert time.monotonic() - began < 0.1, "publish only queues: the loop never waits for Redis"
    publisher.close()
    assert publisher.failed == 3 and publisher.sent == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_several_workers_relays_the_stream_of_a_separate_loop_to_every_client(
    tmp_path: Path,
) -> None:
    require_port("Redis", REDIS_HOST, REDIS_PORT)
    import httpx
    from websockets.sync.client import connect

    url, channel = f"redis://{REDIS_HOST}:{REDIS_PORT}/0", f"spxcast-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = {
        **os.environ,
        "SPXCAST_HOME": str(tmp_path / "home"),
        "SPXCAST_LIVE__REDIS_URL": url,
        "SPXCAST_LIVE__CHANNEL": channel,
        "SPXCAST_LIVE__FEATURE_STORE": "none",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "spxcast.cli.main", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    clients = []
    stack = ExitStack()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.communicate()[0].decode()
            assert time.monotonic() < deadline, "the workers did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        for _ in range(6):  # connections spread over the workers as the kernel hands them out
            ws = stack.enter_context(
                connect(f"ws://127.0.0.1:{port}/ws/market-stream?instruments=SPX500_USD", open_timeout=10)
            )
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            clients.append(ws)
        publisher = RedisPublisher(url, channel)
        got: list[list[int]] = [[] for _ in clients]
        for i in range(60):  # until every worker's relay is subscribed and every client has frames
            publisher.publish({"type": "bar", "instrument": "SPX500_USD", "ts": i})
            time.sleep(0.2)
            for ws, frames in zip(clients, got, strict=True):
                try:
                    while True:
                        frames.append(json.loads(ws.recv(timeout=0.01))["ts"])
                except TimeoutError:
                    pass
            if all(frames for frames in got) and i >= 5:
                break
    finally:
        stack.close()
        server.terminate()
        server.wait(30)
    assert all(frames for frames in got), f"every client gets the stream: {got}"
    assert all(frames == sorted(frames) for frames in got), "in order"
