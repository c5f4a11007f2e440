"""Faults of the server process, with real signals: SIGKILL and SIGTERM in the middle of load."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_harness import (
    Hammer,
    Outcome,
    Request,
    log_rows,
    running_service,
    start_service,
    stop_process,
    wait_until_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GRACE = 2
"""HOUSING_GRACEFUL_TIMEOUT_SECONDS of the stuck-request test."""


def _integrity(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def test_sigkill_mid_load_loses_no_acknowledged_request_and_restart_serves(
    env_for: Callable[..., dict[str, str]],
    pick: Callable[[], dict[str, float]],
    tmp_path: Path,
) -> None:
    env = env_for()

    def request(index: int) -> Request:
        if index % 4 == 0:
            return "/predict/batch", {"houses": [pick() for _ in range(50)]}
        return "/predict", pick()

    service = start_service(env, tmp_path)
    try:
        wait_until_up(service)
        with Hammer(service.url, request, threads=8) as hammer:
            hammer.wait_for(acknowledged=300)
            killed_at = time.monotonic()
            service.signal(signal.SIGKILL)
            assert service.wait_exit(timeout=10) == -signal.SIGKILL
            time.sleep(0.3)
        outcomes = hammer.outcomes
    finally:
        stop_process(service.process)

    acknowledged = {o.request_id for o in outcomes if o.acknowledged}
    cut_off = [o for o in outcomes if o.started < killed_at and o.status is None]
    assert cut_off, "no request was in flight when the server was killed"
    assert {o.status for o in outcomes if o.status is not None} == {200}
    rows = log_rows(service.database)
    assert acknowledged <= {row["id"] for row in rows}, "an acknowledged request is not logged"
    assert _integrity(service.database) == "ok"

    with running_service(env, tmp_path, name="restarted") as again, again.client() as client:
        response = client.post("/predict", json=pick())
        assert response.status_code == 200, response.text
        after = {row["id"] for row in log_rows(again.database)}
        assert response.json()["prediction_id"] in after
        assert acknowledged <= after


def _complete(row: sqlite3.Row) -> bool:
    """A 200 row carries everything its answer promised."""
    if row["latency_ms"] is None or row["latency_ms"] < 0 or not row["model_version"]:
        return False
    if row["endpoint"] == "/predict":
        return row["prediction"] is not None and row["inputs"] is not None
    if row["endpoint"] == "/predict/batch":
        inputs, predictions = json.loads(row["inputs"]), json.loads(row["predictions"])
        return len(inputs) == len(predictions) and None not in predictions
    return False


def test_sigterm_mid_load_finishes_in_flight_requests_and_leaves_no_partial_row(
    env_for: Callable[..., dict[str, str]],
    pick: Callable[[], dict[str, float]],
    tmp_path: Path,
) -> None:
    env = env_for(HOUSING_LOG_LEVEL="INFO")  # uvicorn logs each shutdown step at INFO

    def request(index: int) -> Request:
        # Large batches keep requests in flight long enough for SIGTERM to land among them.
        if index % 2 == 0:
            return "/predict/batch", {"houses": [pick() for _ in range(1000)]}
        return "/predict", pick()

    service = start_service(env, tmp_path)
    try:
        wait_until_up(service)
        with Hammer(service.url, request, threads=6) as hammer:
            hammer.wait_for(acknowledged=60)
            termed_at = time.monotonic()
            service.signal(signal.SIGTERM)
            code = service.wait_exit(timeout=60)
            exited_at = time.monotonic()
        outcomes = hammer.outcomes
    finally:
        stop_process(service.process)

    # uvicorn re-raises the signal once it has shut down gracefully: -SIGTERM is the normal end.
    log = service.log_text()
    assert code in (0, -signal.SIGTERM), log[-3000:]
    assert "Waiting for connections to close" in log or "Shutting down" in log, log[-3000:]
    assert "Application shutdown complete" in log, log[-3000:]
    answered: list[Outcome] = [o for o in outcomes if o.status is not None]
    straddling = [o for o in answered if o.started < termed_at < o.ended]
    assert straddling, "no request was in flight at SIGTERM"
    assert {o.status for o in straddling} == {200}, "an in-flight request did not finish"
    assert {o.status for o in answered} == {200}
    rows = log_rows(service.database)
    # Every row the server committed was answered, and every answer has its row: nothing the
    # server started was cut off, and nothing was acknowledged without being logged.
    assert {row["id"] for row in rows} == {o.request_id for o in answered}
    assert all(_complete(row) for row in rows)
    assert _integrity(service.database) == "ok"
    assert exited_at - termed_at < 30


def test_sigterm_waits_for_a_stuck_request_only_as_long_as_configured(
    env_for: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """A client that never finishes its request cannot hold the shutdown beyond the timeout."""
    env = env_for(HOUSING_GRACEFUL_TIMEOUT_SECONDS=str(GRACE), HOUSING_LOG_LEVEL="INFO")
    with running_service(env, tmp_path) as service:
        host, port = service.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as stuck:
            stuck.sendall(
                b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b'Content-Length: 400\r\n\r\n{"MedInc": '
            )
            time.sleep(0.5)  # the request is being read: in flight
            termed_at = time.monotonic()
            service.signal(signal.SIGTERM)
            code = service.wait_exit(timeout=60)
            waited = time.monotonic() - termed_at
        rows = log_rows(service.database)
    assert code in (0, -signal.SIGTERM)
    assert GRACE - 0.5 <= waited < GRACE + 6, f"shut down after {waited:.1f} s"
    assert "Cancel" in service.log_text() or "timeout" in service.log_text().lower()
    assert all(row["status"] != 200 for row in rows)
