"""Limits that live in the server, on real `housing serve` processes on loopback: whose
X-Forwarded-For counts, how many connections a worker takes, how large a request head may be,
and /metrics on a port of its own."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from reliability_harness import Service, free_port, running_service, service_env

from housing.features import typical_row

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 6


@pytest.fixture(scope="module")
def start(
    trained_registry: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Service]]:
    """Start a service with extra settings; every one is stopped at the end of the module."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def make(**overrides: str) -> Service:
            workdir = tmp_path_factory.mktemp("limits")
            env = service_env(trained_registry, workdir / "log.db", data_dir, **overrides)
            return stack.enter_context(running_service(env, workdir))

        yield make


def random_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(start) -> None:
    """uvicorn trusted loopback's X-Forwarded-For by default: a random header per request gave
    every request a fresh address, 400 answered 200 where 200 should have been 429."""
    service = start(HOUSING_RATE_LIMIT=f"{RATE}/minute")
    with service.client() as client:
        statuses = [
            client.get("/schema", headers={"X-Forwarded-For": random_address()}).status_code
            for _ in range(2 * RATE)
        ]
    assert statuses.count(200) == RATE and statuses[RATE:] == [429] * RATE, statuses


def test_forwarded_for_from_a_configured_proxy_names_the_client(start) -> None:
    service = start(HOUSING_RATE_LIMIT=f"{RATE}/minute", HOUSING_FORWARDED_ALLOW_IPS="127.0.0.1")
    with service.client() as client:
        others = [
            client.get("/schema", headers={"X-Forwarded-For": random_address()}).status_code
            for _ in range(2 * RATE)
        ]
        one = random_address()
        same = [
            client.get("/schema", headers={"X-Forwarded-For": one}).status_code
            for _ in range(RATE + 2)
        ]
    assert others == [200] * (2 * RATE)  # each a client of its own behind the proxy
    assert same == [200] * RATE + [429] * 2


@pytest.fixture(scope="module")
def capped(start) -> tuple[Service, int]:
    metrics_port = free_port()
    service = start(
        HOUSING_LIMIT_CONCURRENCY="4",
        HOUSING_MAX_HEADER_BYTES="8192",
        HOUSING_METRICS_PORT=str(metrics_port),
    )
    return service, metrics_port


def health(service: Service) -> int:
    with service.client(timeout=10) as client:
        return client.get("/health").status_code


def wait_for_status(service: Service, status: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while (got := health(service)) != status:
        assert time.monotonic() < deadline, f"/health stayed {got}, expected {status}"
        time.sleep(0.1)


def test_connections_past_the_cap_get_503_until_some_close(capped) -> None:
    service, _ = capped
    host, port = service.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(4)]
    try:
        wait_for_status(service, 503)  # the server accepted them: the cap is reached
    finally:
        for sock in idle:
            sock.close()
    wait_for_status(service, 200)


def test_a_request_head_over_the_cap_gets_431(capped) -> None:
    service, _ = capped
    with service.client() as client:
        big = client.get("/health", headers={"X-Big": "a" * 20_000})
        many = client.get("/health", headers={f"X-H{i}": "b" * 90 for i in range(120)})
    assert big.status_code == many.status_code == 431, (big.text, many.text)
    with service.client() as client:
        assert client.get("/health", headers={"X-Fine": "c" * 6_000}).status_code == 200
        # The body is not the head: a 1,000-house batch (~200 kB) still goes through.
        batch = client.post("/predict/batch", json={"houses": [typical_row()] * 1000})
        assert batch.status_code == 200 and batch.json()["predicted"] == 1000
        again = client.get("/health")  # and the connection it used is still fine
        assert again.status_code == 200


def test_metrics_on_their_own_port_and_not_on_the_api(capped) -> None:
    service, metrics_port = capped
    with service.client() as client:
        assert client.post("/predict", json=typical_row()).status_code == 200
        assert client.get("/metrics").status_code == 404
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert 'housing_requests_total{endpoint="/predict",status="200"}' in text
    assert "housing_model_info" in text
