"""The Service page's figures, from real prometheus_client exposition text."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from frontend.metrics import parse_metrics, per_endpoint, summarize

BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1)


def exposition(latencies: dict[str, list[float]], statuses: dict[tuple[str, str], int]) -> str:
    """/metrics text as the service's metric names would produce it."""
    registry = CollectorRegistry()
    requests = Counter("housing_requests_total", "r", ["endpoint", "status"], registry=registry)
    latency = Histogram(
        "housing_request_latency_seconds", "l", ["endpoint"], buckets=BUCKETS, registry=registry
    )
    rmse = Gauge("housing_live_rmse", "rmse", registry=registry)
    rmse.set(0.52)
    info = Gauge("housing_model_info", "m", ["name", "version", "candidate"], registry=registry)
    info.labels("california-housing", "3", "gradient_boosting").set(1)
    for endpoint, values in latencies.items():
        for value in values:
            latency.labels(endpoint).observe(value)
    for (endpoint, status), n in statuses.items():
        requests.labels(endpoint, status).inc(n)
    return generate_latest(registry).decode()


def test_parse_reads_counters_histograms_gauges_and_model_info() -> None:
    text = exposition({"/predict": [0.002] * 10}, {("/predict", "200"): 10, ("/health", "200"): 4})
    scrape = parse_metrics(text, taken_at=100.0)
    assert scrape.requests[("/predict", "200")] == 10
    assert scrape.requests[("/health", "200")] == 4
    assert scrape.latency["/predict"].count == 10
    assert scrape.gauges["housing_live_rmse"] == pytest.approx(0.52)
    assert scrape.model_info["version"] == "3"


def test_quantiles_interpolate_inside_the_bucket_like_promql() -> None:
    # 90 fast (<=1 ms) and 10 slow (in the 50-100 ms bucket) requests.
    text = exposition({"/predict": [0.0005] * 90 + [0.07] * 10}, {("/predict", "200"): 100})
    summary = summarize(parse_metrics(text, taken_at=1.0))
    # rank 50 of 90 in the first bucket [0, 1 ms]: 50/90 of the way.
    assert summary.p50_ms == pytest.approx(1000 * 0.001 * 50 / 90)
    # rank 95 is the 5th of 10 in (50, 100] ms: halfway.
    assert summary.p95_ms == pytest.approx(75.0)
    assert summary.requests == 100


def test_rate_and_ratios_come_from_the_difference_of_two_scrapes() -> None:
    first = parse_metrics(
        exposition({"/predict": [0.002] * 10}, {("/predict", "200"): 10}), taken_at=10.0
    )
    second = parse_metrics(
        exposition(
            {"/predict": [0.002] * 10 + [0.02] * 30},
            {("/predict", "200"): 30, ("/predict", "422"): 5, ("/predict", "503"): 5},
        ),
        taken_at=20.0,
    )
    summary = summarize(second, first)
    assert summary.window_seconds == 10.0
    assert summary.requests == 30  # 40 - 10
    assert summary.rate_per_second == pytest.approx(3.0)
    assert summary.error_ratio == pytest.approx(5 / 30)
    assert summary.rejected_ratio == pytest.approx(5 / 30)
    # The window holds only the 30 slow observations (10-50 ms bucket).
    assert 10.0 < summary.p50_ms <= 50.0


def test_a_restarted_api_falls_back_to_totals_instead_of_negative_rates() -> None:
    before = parse_metrics(exposition({}, {("/predict", "200"): 50}), taken_at=10.0)
    after = parse_metrics(exposition({}, {("/predict", "200"): 3}), taken_at=20.0)
    assert summarize(after, before).requests == 3


def test_no_traffic_gives_no_figures_rather_than_zeros() -> None:
    summary = summarize(parse_metrics(exposition({}, {}), taken_at=1.0))
    assert summary.requests == 0
    assert summary.error_ratio is None and summary.p99_ms is None


def test_per_endpoint_rows_count_each_status_class() -> None:
    text = exposition(
        {"/predict": [0.002] * 4},
        {("/predict", "200"): 3, ("/predict", "422"): 1, ("/feedback", "500"): 2},
    )
    rows = {r["endpoint"]: r for r in per_endpoint(parse_metrics(text, taken_at=1.0))}
    assert rows["/predict"]["requests"] == 4 and rows["/predict"]["4xx"] == 1
    assert rows["/feedback"]["5xx"] == 2 and rows["/feedback"]["p50 ms"] is None


def test_first_reading_averages_since_the_first_request_counted() -> None:
    text = exposition({"/predict": [0.002] * 6}, {("/predict", "200"): 6})
    scrape = parse_metrics(text, taken_at=0.0)
    created = min(scrape.created.values())  # set by prometheus_client when the series appeared
    later = parse_metrics(text, taken_at=created + 3.0)
    summary = summarize(later)
    assert summary.window_seconds == pytest.approx(3.0)
    assert summary.rate_per_second == pytest.approx(2.0)
