"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

With several uvicorn workers each process exports its own series; scrape each replica (nginx balances).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
            "spxcast_prediction_log_queue_depth", "Prediction rows waiting in memory", registry=self.registry
        )
        self.spooled = Gauge(
            "spxcast_prediction_log_spool_rows",
            "Prediction rows spooled since start (database outages)",
            registry=self.registry,
        )
        self.version = Gauge(
            "spxcast_slot_model_version",
            "Model version per slot (0 = empty)",
            ["slot"],
            registry=self.registry,
        )
        self.weight = Gauge("spxcast_slot_weight", "Traffic share per slot", ["slot"], registry=self.registry)
        self.live = Gauge("spxcast_slot_live", "1 for the live slot", ["slot"], registry=self.registry)
        self.shadow = Gauge("spxcast_shadow_enabled", "1 when shadow mode is on", registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.latency.labels(route, method).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def predicted(self, slot: str, role: str) -> None:
        self.predictions.labels(slot, role).inc()

    def rows_written(self, n: int) -> None:
        self.logged.inc(n)

    def slots_changed(self, state: SlotState, models: dict[str, Any]) -> None:
        for slot, version in state.versions.items():
            self.version.labels(slot).set(version or 0)
            self.weight.labels(slot).set(state.weights[slot])
            self.live.labels(slot).set(1 if slot == state.live else 0)
        self.shadow.set(1 if state.shadow else 0)

    def export(self, queue_depth: int, spooled: int) -> bytes:
        self.queue_depth.set(queue_depth)
        self.spooled.set(spooled)
        return generate_latest(self.registry)
