"""The market stream's fan-out: per-instrument subscriptions, and a slow client is dropped instead of
slowing the publisher (bounded queue per client)."""

from __future__ import annotations

import asyncio
import json
import time

from spxcast.serving.live.hub import DROPPED, StreamHub


def _frame(instrument: str, i: int) -> dict[str, object]:
    return {"type": "bar", "instrument": instrument, "ts": i}


def test_subscribers_get_their_instruments_in_order_and_a_slow_one_is_dropped() -> None:
    hub = StreamHub(capacity=5)

    async def scenario() -> tuple[list[int], list[str], float]:
        fast = hub.subscribe(frozenset({"SPX500_USD"}))
        slow = hub.subscribe(frozenset())  # all instruments, never reads
        received: list[int] = []

        took: list[float] = []

        def publish() -> None:  # the loop's thread, a bar every 2 ms
            for i in range(20):
                began = time.perf_counter()
                hub.publish(_frame("SPX500_USD", i))
                hub.publish(_frame("EUR_USD", i))
                hub.publish({"type": "vector", "instrument": "SPX500_USD"})  # internal: never relayed
                took.append(time.perf_counter() - began)
                time.sleep(0.002)

        async def read() -> None:
            while len(received) < 20:
                received.append(json.loads(await asyncio.wait_for(fast.queue.get(), 5))["ts"])

        await asyncio.gather(asyncio.to_thread(publish), read())
        slow_items = []
        while not slow.queue.empty():
            slow_items.append(slow.queue.get_nowait())
        return received, slow_items, max(took)

    received, slow_items, took = asyncio.run(scenario())
    assert received == list(range(20)), "the fast client got every SPX500_USD frame, in order, and no other"
    assert len(slow_items) == 6 and slow_items[-1] == DROPPED, "5 frames queued, then the drop sentinel"
    assert hub.dropped_clients == 1
    assert took < 0.1, "publishing never waited for a client"


def test_a_replica_feeds_the_loops_outcome_frames_of_its_series_to_its_intervals() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace
    from typing import Any

    from spxcast.serving.live.runtime import observe_outcome

    fed: list[Any] = []
    service: Any = SimpleNamespace(
        settings=SimpleNamespace(instrument="SPX500_USD", granularity="M1"),
        observe_realised=lambda outcomes: fed.extend(outcomes),
    )
    frame = {
        "type": "outcome",
        "instrument": "SPX500_USD",
        "granularity": "M1",
        "ts": "2024-01-12T15:00:00+00:00",
        "realised_pct": 0.25,
        "predictions": [{"prediction_id": "x", "model_version": 3, "predicted_pct": 0.1}],
    }
    observe_outcome(service, frame)
    observe_outcome(service, {**frame, "granularity": "M5"})  # another series: not this replica's
    assert fed == [(3, datetime(2024, 1, 12, 15, tzinfo=UTC), 0.1, 0.25)]
