"""A loop in its own process publishing through Redis pub/sub to API replicas: each replica's relay hands
the bar frames, in order, to its WebSocket hub and the vectors to its feature source (real Redis)."""

from __future__ import annotations

import asyncio
import json
import uuid

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
            for relay in relays:
                relay.close()
        return received, vectors

    received, vectors = asyncio.run(scenario())
    assert received == [list(range(30)), list(range(30))], (
        "every replica: every bar of its instrument, in order"
    )
    assert len(vectors) == 60 and all(v["type"] == "vector" for v in vectors), (
        "vectors go to the feature source"
    )
