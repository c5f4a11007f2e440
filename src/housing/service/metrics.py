"""Prometheus metrics of the service, built by a function on a registry the caller chooses.

Tests build them on a fresh ``CollectorRegistry`` each; the app keeps its own in ``app.state``
and serves it at /metrics, so other parts (monitoring) register their gauges on the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from housing.features import TARGET_DOLLARS

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LOG_WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)
VALUE_BUCKETS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 8.0)
WIDTH_BUCKETS = (25e3, 50e3, 75e3, 100e3, 125e3, 150e3, 200e3, 250e3, 300e3, 400e3, 500e3)
"""Interval widths in dollars (the 90% intervals of the champion are ~$100k wide on average)."""


@dataclass(frozen=True)
class ServiceMetrics:
    """The service's instruments (names are part of the contract with monitoring)."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    prediction_value: Histogram
    validation_failures: Counter
    model_info: Gauge
    in_flight: Gauge
    log_write: Histogram
    reloads: Counter
    batch_size: Histogram
    interval_width: Histogram

    def observe_widths(self, bounds: tuple[Any, Any]) -> None:
        """Record each served interval's width (``high - low``, $100k) in dollars."""
        observe = self.interval_width.observe
        for width in (bounds[1] - bounds[0]).tolist():
            observe(width * TARGET_DOLLARS)


def build_metrics(registry: CollectorRegistry | None = None) -> ServiceMetrics:
    """Create every instrument on ``registry`` (a new one when None)."""
    registry = registry if registry is not None else CollectorRegistry()
    return ServiceMetrics(
        registry=registry,
        requests=Counter(
            "housing_requests_total",
            "HTTP requests by route and status code",
            ["endpoint", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "housing_request_latency_seconds",
            "Time from receiving a request to finishing its response",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        prediction_value=Histogram(
            "housing_prediction_value",
            "Predicted median house value ($100k)",
            buckets=VALUE_BUCKETS,
            registry=registry,
        ),
        validation_failures=Counter(
            "housing_validation_failures_total",
            "Rejected input values by field and rule",
            ["field", "rule"],
            registry=registry,
        ),
        model_info=Gauge(
            "housing_model_info",
            "The model serving (value 1)",
            ["name", "version", "candidate"],
            multiprocess_mode="livemax",
            registry=registry,
        ),
        in_flight=Gauge(
            "housing_requests_in_flight",
            "Requests being handled",
            multiprocess_mode="livesum",
            registry=registry,
        ),
        log_write=Histogram(
            "housing_log_write_seconds",
            "Time to commit one group of prediction-log rows",
            buckets=LOG_WRITE_BUCKETS,
            registry=registry,
        ),
        reloads=Counter(
            "housing_model_reloads_total",
            "Model loads by result (success, failure)",
            ["result"],
            registry=registry,
        ),
        batch_size=Histogram(
            "housing_batch_requests",
            "Requests served by one micro-batch (one predict, one commit)",
            buckets=BATCH_BUCKETS,
            registry=registry,
        ),
        interval_width=Histogram(
            "housing_interval_width",
            "Width of each served prediction interval (dollars)",
            buckets=WIDTH_BUCKETS,
            registry=registry,
        ),
    )
