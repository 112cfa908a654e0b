"""Fan-out of the market stream: the loop publishes frames, each WebSocket client gets those of its
instruments through its own bounded queue.

The loop's thread never waits for a client: :meth:`StreamHub.publish` hands the frame to each
subscriber's event loop (``call_soon_threadsafe``) and returns; a subscriber whose queue is full is marked
dropped and its connection closed by the route (a slow client loses its stream, the loop does not slow
down). With several API replicas the loop publishes to Redis (:class:`RedisPublisher`) and each replica runs
a :class:`RedisRelay` that feeds its own hub and its in-memory feature vectors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

DROPPED = "__dropped__"
"""Put on a subscriber's queue instead of a frame when it was full: the route closes the connection."""


class Publisher(Protocol):
    """Where the loop sends frames (JSON-able dicts with ``type`` and ``instrument``)."""

    def publish(self, frame: dict[str, Any]) -> None: ...


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), default=str)


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client: its instruments (empty = all; the client may change them), queue and loop."""

    instruments: frozenset[str]
    queue: asyncio.Queue[str]
    loop: asyncio.AbstractEventLoop
    dropped: bool = False
    sent: int = field(default=0)

    def wants(self, instrument: str) -> bool:
        return not self.instruments or instrument in self.instruments


class StreamHub:
    """In-process fan-out with a bounded queue per subscriber (``capacity`` frames)."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.published = 0
        self.dropped_clients = 0

    def subscribe(self, instruments: frozenset[str]) -> Subscriber:
        """A subscriber on the running event loop (call from the WebSocket handler)."""
        subscriber = Subscriber(instruments, asyncio.Queue(self.capacity + 1), asyncio.get_running_loop())
        with self._lock:
            self._subscribers = {*self._subscribers, subscriber}
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = self._subscribers - {subscriber}

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def publish(self, frame: dict[str, Any]) -> None:
        if frame["type"] != "vector":  # vectors are for replicas' feature sources, not for clients
            self.publish_text(frame["instrument"], encode(frame))

    def publish_text(self, instrument: str, text: str) -> None:
        """Offer one encoded frame to every subscriber of ``instrument``; never blocks."""
        self.published += 1
        for subscriber in self._subscribers:  # a snapshot: the set is replaced, never mutated
            if subscriber.dropped or not subscriber.wants(instrument):
                continue
            try:
                subscriber.loop.call_soon_threadsafe(self._offer, subscriber, text)
            except RuntimeError:  # its event loop is closed: the client is gone
                self.unsubscribe(subscriber)

    def _offer(self, subscriber: Subscriber, text: str) -> None:
        """Runs on the subscriber's event loop: enqueue, or drop the client when it is too far behind."""
        if subscriber.dropped:
            return
        if subscriber.queue.qsize() >= self.capacity:
            subscriber.dropped = True
            self.dropped_clients += 1
            subscriber.queue.put_nowait(DROPPED)
            log.warning("market stream: a client %d frames behind was dropped", self.capacity)
            return
        subscriber.queue.put_nowait(text)


class Fanout:
    """Several publishers as one (e.g. the local hub and Redis)."""

    def __init__(self, *publishers: Publisher) -> None:
        self.publishers = publishers

    def publish(self, frame: dict[str, Any]) -> None:
        for publisher in self.publishers:
            publisher.publish(frame)

    def close(self) -> None:
        """Close the publishers that have a ``close`` (a Redis sender; the hub belongs to its app)."""
        for publisher in self.publishers:
            close = getattr(publisher, "close", None)
            if close is not None:
                close()


class RedisPublisher:
    """Publishes frames to a Redis pub/sub channel (a loop running in its own process), from its own thread.

    :meth:`publish` encodes the frame and queues it; the sender thread sends everything queued in one
    pipeline (one round trip), in order, so the loop never waits for Redis -- a round trip per frame took
    a third of the loop's time at full speed. While Redis is unreachable, frames are dropped and counted
    (``failed``; pub/sub keeps nothing for an absent subscriber either, and the prediction log is the
    record); the sender retries with the next frames. :meth:`close` sends what is queued, then stops.
    """

    def __init__(self, url: str, channel: str) -> None:
        import queue

        import redis

        self.client = redis.Redis.from_url(url)
        self.channel = channel
        self.sent = 0
        self.failed = 0
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="live-redis-publish", daemon=True)
        self._thread.start()

    def publish(self, frame: dict[str, Any]) -> None:
        self._queue.put(encode(frame))

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued, then stop the sender."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        import redis

        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get())
            stopping = None in batch
            texts = [text for text in batch if text is not None]
            if not texts:
                continue
            pipeline = self.client.pipeline(transaction=False)
            for text in texts:
                pipeline.publish(self.channel, text)
            try:
                pipeline.execute()
            except redis.RedisError as exc:
                self.failed += len(texts)
                log.warning("market stream: %d frames not published to Redis: %s", len(texts), exc)
            else:
                self.sent += len(texts)


class RedisRelay:
    """A replica's side of Redis pub/sub: frames to the local hub, feature vectors to ``on_vector`` (not to
    clients), realised outcomes also to ``on_outcome``."""

    def __init__(
        self,
        url: str,
        channel: str,
        hub: StreamHub,
        on_vector: Callable[[dict[str, Any]], None] | None = None,
        on_outcome: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.channel = channel
        self.hub = hub
        self.on_vector = on_vector
        self.on_outcome = on_outcome
        self._stop = threading.Event()
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._thread = threading.Thread(target=self._run, name="live-relay", daemon=True)

    def start(self) -> RedisRelay:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            text = message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
            frame = json.loads(text)
            if frame.get("type") == "vector":
                if self.on_vector is not None:
                    self.on_vector(frame)
                continue
            self.hub.publish_text(frame["instrument"], text)
            if frame.get("type") == "outcome" and self.on_outcome is not None:
                self.on_outcome(frame)
