"""Service figures (request rate, latency percentiles, error ratio) from the API's /metrics text.

prometheus_client parses the exposition format. Prometheus itself is not in the UI's path, so
the two PromQL functions the page needs are reproduced here on two scrapes: ``rate`` (the
difference of two counter readings over the time between them) and ``histogram_quantile``
(linear interpolation inside the bucket holding the quantile, as PromQL does).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "housing_requests_total"
LATENCY = "housing_request_latency_seconds"
# Endpoints whose traffic is the service's work; /metrics, /health, ... are probes.
WORK_ENDPOINTS = ("/predict", "/predict/batch", "/feedback")


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (upper bound -> count), plus the total count and sum."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    total: float

    def minus(self, earlier: Histogram) -> Histogram:
        """The observations made between ``earlier`` and this reading."""
        before = dict(earlier.buckets)
        return Histogram(
            tuple((le, c - before.get(le, 0.0)) for le, c in self.buckets),
            self.count - earlier.count,
            self.total - earlier.total,
        )

    def quantile(self, q: float) -> float | None:
        """PromQL's ``histogram_quantile``: None when there is no observation."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.buckets[-1][1]
        lower_bound, lower_count = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    # The quantile is beyond the last finite bucket: its bound is the best answer.
                    return lower_bound
                width = cumulative - lower_count
                if width <= 0:
                    return le
                return lower_bound + (le - lower_bound) * (rank - lower_count) / width
            lower_bound, lower_count = le, cumulative
        return lower_bound


@dataclass(frozen=True)
class Scrape:
    """One reading of /metrics: what the Service page needs from it."""

    taken_at: float
    requests: dict[tuple[str, str], float]
    latency: dict[str, Histogram]
    gauges: dict[str, float] = field(default_factory=dict)
    model_info: dict[str, str] = field(default_factory=dict)
    created: dict[tuple[str, str], float] = field(default_factory=dict)
    """When each request counter series was created (its first request), Unix seconds."""


def parse_metrics(text: str, taken_at: float) -> Scrape:
    """Read the request counter, the latency histogram and the housing_ gauges."""
    counts_by_status: dict[tuple[str, str], float] = {}
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    gauges: dict[str, float] = {}
    model_info: dict[str, str] = {}
    created: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == REQUESTS:
                key = (labels.get("endpoint", ""), labels.get("status", ""))
                counts_by_status[key] = counts_by_status.get(key, 0.0) + sample.value
            elif sample.name == "housing_requests_created":
                created[(labels.get("endpoint", ""), labels.get("status", ""))] = sample.value
            elif sample.name == f"{LATENCY}_bucket":
                buckets[labels.get("endpoint", "")].append((float(labels["le"]), sample.value))
            elif sample.name == f"{LATENCY}_count":
                counts[labels.get("endpoint", "")] = sample.value
            elif sample.name == f"{LATENCY}_sum":
                sums[labels.get("endpoint", "")] = sample.value
            elif sample.name == "housing_model_info" and sample.value == 1:
                model_info = dict(labels)
            elif family.type == "gauge" and not labels and sample.name.startswith("housing_"):
                gauges[sample.name] = sample.value
            elif sample.name == "process_start_time_seconds":
                gauges[sample.name] = sample.value
    latency = {
        endpoint: Histogram(tuple(sorted(rows)), counts.get(endpoint, 0.0), sums.get(endpoint, 0.0))
        for endpoint, rows in buckets.items()
    }
    return Scrape(taken_at, counts_by_status, latency, gauges, model_info, created)


def merge(histograms: list[Histogram]) -> Histogram | None:
    """Sum histograms with the same buckets (``sum by (le)`` in PromQL)."""
    if not histograms:
        return None
    totals: dict[float, float] = defaultdict(float)
    for h in histograms:
        for le, c in h.buckets:
            totals[le] += c
    return Histogram(
        tuple(sorted(totals.items())),
        sum(h.count for h in histograms),
        sum(h.total for h in histograms),
    )


@dataclass(frozen=True)
class Summary:
    """The Service page's headline figures over one window."""

    window_seconds: float | None
    requests: float
    rate_per_second: float | None
    error_ratio: float | None
    rejected_ratio: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def _window(
    current: Scrape, previous: Scrape | None, endpoints: tuple[str, ...] = WORK_ENDPOINTS
) -> tuple[Scrape, float | None]:
    """Counters since ``previous`` if given (a rate), else since the first request counted."""
    if previous is None or current.taken_at <= previous.taken_at:
        firsts = [t for (e, _), t in current.created.items() if e in endpoints]
        started = current.gauges.get("process_start_time_seconds") or min(firsts, default=None)
        span = current.taken_at - started if started else None
        return current, span if span and span > 0 else None
    if any(v < previous.requests.get(k, 0.0) for k, v in current.requests.items()):
        # A counter went down: the API restarted between the two readings.
        return _window(current, None, endpoints)
    requests = {k: v - previous.requests.get(k, 0.0) for k, v in current.requests.items()}
    latency = {
        e: h.minus(previous.latency[e]) if e in previous.latency else h
        for e, h in current.latency.items()
    }
    delta = Scrape(
        current.taken_at, requests, latency, current.gauges, current.model_info, current.created
    )
    return delta, current.taken_at - previous.taken_at


def summarize(
    current: Scrape, previous: Scrape | None = None, endpoints: tuple[str, ...] = WORK_ENDPOINTS
) -> Summary:
    """Rate, error ratio (5xx), rejected ratio (4xx) and latency percentiles over one window."""
    window, seconds = _window(current, previous, endpoints)
    chosen = {k: v for k, v in window.requests.items() if k[0] in endpoints}
    total = sum(chosen.values())
    errors = sum(v for (_, status), v in chosen.items() if status.startswith("5"))
    rejected = sum(v for (_, status), v in chosen.items() if status.startswith("4"))
    histogram = merge([h for e, h in window.latency.items() if e in endpoints])

    def ms(q: float) -> float | None:
        value = histogram.quantile(q) if histogram else None
        return None if value is None else value * 1000.0

    return Summary(
        window_seconds=seconds,
        requests=total,
        rate_per_second=total / seconds if seconds else None,
        error_ratio=errors / total if total else None,
        rejected_ratio=rejected / total if total else None,
        p50_ms=ms(0.5),
        p95_ms=ms(0.95),
        p99_ms=ms(0.99),
    )


def per_endpoint(current: Scrape, previous: Scrape | None = None) -> list[dict[str, object]]:
    """One row per endpoint: requests, 4xx, 5xx and latency percentiles over the window."""
    window, _ = _window(current, previous)
    rows: list[dict[str, object]] = []
    for endpoint in sorted({e for e, _ in window.requests} | set(window.latency)):
        counts = {s: v for (e, s), v in window.requests.items() if e == endpoint}
        histogram = window.latency.get(endpoint)
        p = {q: histogram.quantile(q) if histogram else None for q in (0.5, 0.95, 0.99)}
        rows.append(
            {
                "endpoint": endpoint,
                "requests": sum(counts.values()),
                "4xx": sum(v for s, v in counts.items() if s.startswith("4")),
                "5xx": sum(v for s, v in counts.items() if s.startswith("5")),
                "p50 ms": None if p[0.5] is None else p[0.5] * 1000,
                "p95 ms": None if p[0.95] is None else p[0.95] * 1000,
                "p99 ms": None if p[0.99] is None else p[0.99] * 1000,
            }
        )
    return rows
