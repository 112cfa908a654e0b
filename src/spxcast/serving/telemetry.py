"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

With several uvicorn workers (``spxcast serve --workers N``) the metrics are kept in prometheus_client's
multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (set by ``spxcast serve`` before the workers start) holds one
memory-mapped file per worker and metric kind, and ``/metrics``, whichever worker answers it, exports the
sum over all workers (counters and histograms; the log queue depth and spool rows summed over live workers)
and the newest value written by a live worker for the slot gauges (every worker follows the same audited
slot state). Without the variable each process exports its own series.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

if TYPE_CHECKING:
    from spxcast.serving.slots import SlotState

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Telemetry:
    """Request latency per route, predictions per slot and role, errors, log queue depth, versions."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "spxcast_request_seconds",
            "Request latency by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "spxcast_request_errors_total",
            "Responses with status >= 400",
            ["route", "status"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "spxcast_predictions_total",
            "Predictions by slot and role (served, shadow)",
            ["slot", "role"],
            registry=self.registry,
        )
        self.logged = Counter(
            "spxcast_prediction_rows_written_total",
            "Prediction rows committed to the app database",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "spxcast_prediction_log_queue_depth",
            "Prediction rows waiting in memory",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.spooled = Gauge(
            "spxcast_prediction_log_spool_rows",
            "Prediction rows spooled since start (database outages)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.version = Gauge(
            "spxcast_slot_model_version",
            "Model version per slot (0 = empty)",
            ["slot"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.weight = Gauge(
            "spxcast_slot_weight",
            "Traffic share per slot",
            ["slot"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.live = Gauge(
            "spxcast_slot_live",
            "1 for the live slot",
            ["slot"],
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        self.shadow = Gauge(
            "spxcast_shadow_enabled",
            "1 when shadow mode is on",
            registry=self.registry,
            multiprocess_mode="livemostrecent",
        )
        # Children looked up once: ``labels()`` takes a lock and hashes the labels on every call.
        self._latency: dict[tuple[str, str], Any] = {}
        self._predictions: dict[tuple[str, str], Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        child = self._latency.get((route, method))
        if child is None:
            child = self._latency[route, method] = self.latency.labels(route, method)
        child.observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def predicted(self, slot: str, role: str) -> None:
        child = self._predictions.get((slot, role))
        if child is None:
            child = self._predictions[slot, role] = self.predictions.labels(slot, role)
        child.inc()

    def log_cycle(self, depth: int, spooled: int) -> None:
        """The prediction log's writer woke: ``depth`` rows were waiting, ``spooled`` spooled since start."""
        self.queue_depth.set(depth)
        self.spooled.set(spooled)

    def rows_written(self, n: int) -> None:
        self.logged.inc(n)

    def slots_changed(self, state: SlotState, models: dict[str, Any]) -> None:
        for slot, version in state.versions.items():
            self.version.labels(slot).set(version or 0)
            self.weight.labels(slot).set(state.weights[slot])
            self.live.labels(slot).set(1 if slot == state.live else 0)
        self.shadow.set(1 if state.shadow else 0)

    def export(self, queue_depth: int, spooled: int) -> bytes:
        """The exposition text: this process's series, or every worker's in multiprocess mode."""
        self.log_cycle(queue_depth, spooled)
        if not multiprocess():
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged)

    def close(self) -> None:
        """This process stops serving: in multiprocess mode its live gauges leave the export."""
        if multiprocess():
            mark_process_dead(os.getpid())


@contextmanager
def shared_between_workers() -> Iterator[Path]:
    """Metrics shared by the worker processes started inside the block (multiprocess mode).

    Sets ``PROMETHEUS_MULTIPROC_DIR`` for the workers (they import prometheus_client after it is set):
    a fresh temporary directory, removed afterwards, or the directory the variable already names, emptied
    of the previous run's files first (stale series would be summed into the new run's). Yields it.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="spxcast-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)


def multiprocess() -> bool:
    """Whether metric values live in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client chose its value class
    from that variable when it was first imported in this process)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))
