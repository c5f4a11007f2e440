"""Faults of the prediction log: locked by another connection, or read-only. The service must
answer 503 and fail /ready rather than acknowledge an unlogged request, and recover by itself."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from reliability_harness import Hammer, Request, log_rows, running_service

from housing.service import log as prediction_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCK_TIMEOUT = "0.5"
"""HOUSING_DATABASE_TIMEOUT_SECONDS: how long a write waits for the lock before the 503."""


def _wait_ready(client: httpx.Client, timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/ready")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_locked_log_answers_503_and_not_ready_never_a_silent_loss_then_recovers(
    env_for: Callable[..., dict[str, str]],
    pick: Callable[[], dict[str, float]],
    tmp_path: Path,
) -> None:
    env = env_for(HOUSING_DATABASE_TIMEOUT_SECONDS=LOCK_TIMEOUT)

    def request(index: int) -> Request:
        if index == 0:  # one client sends rejected input: its rejection must be logged too
            return "/predict", {**pick(), "MedInc": -1.0}
        return "/predict", pick()

    with running_service(env, tmp_path) as service, service.client() as client:
        with Hammer(service.url, request, threads=4) as hammer:
            hammer.wait_for(acknowledged=50)
            lock = sqlite3.connect(service.database, isolation_level=None, timeout=10)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                locked_at = time.monotonic()
                ready = client.get("/ready")
                direct = client.post("/predict", json=pick())
                health_started = time.monotonic()
                health = client.get("/health")  # liveness must not wait on the log for long
                health_took = time.monotonic() - health_started
                time.sleep(1.0)
            finally:
                released_at = time.monotonic()
                lock.execute("ROLLBACK")
                lock.close()
            recovered = _wait_ready(client)
            hammer.wait_for(acknowledged=hammer.count_acknowledged() + 50)
        after = client.post("/predict", json=pick())
        rows = log_rows(service.database)

    assert ready.status_code == 503, ready.text
    assert ready.json()["ready"] is False and "locked" in ready.json()["database"]
    assert direct.status_code == 503, direct.text
    assert "cannot be written" in direct.json()["detail"]
    assert health.status_code == 200 and health_took < float(LOCK_TIMEOUT) + 2.0
    assert recovered.status_code == 200, recovered.text
    assert after.status_code == 200, after.text

    outcomes = hammer.outcomes
    assert {o.status for o in outcomes} <= {200, 422, 503}, {o.status for o in outcomes}
    during = [o for o in outcomes if locked_at < o.started and o.ended < released_at]
    assert during and {o.status for o in during} == {503}, "a request was answered unlogged"
    assert any(o.status == 422 for o in outcomes)
    logged = {row["id"] for row in rows}
    answered = {o.request_id for o in outcomes if o.status in (200, 422)}
    # A 2xx (and a logged rejection) only if its row exists; a 503 leaves no row behind.
    assert answered <= logged
    assert logged == answered | {after.json()["prediction_id"]}
    assert not {o.request_id for o in outcomes if o.status == 503} & logged


def unprivileged() -> tuple[str, ...]:
    """A command prefix under which file modes bind the server. Root ignores them (it has
    CAP_DAC_OVERRIDE), so as root the server runs without that capability (setpriv)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root: need setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search")


def writable(database: Path) -> None:
    """What an operator does: make the log and its WAL files writable (SQLite created the
    ``-shm`` file with the database's read-only mode)."""
    for path in database.parent.glob(f"{database.name}*"):
        path.chmod(0o644)


def test_read_only_log_answers_503_and_not_ready_then_recovers_when_writable(
    env_for: Callable[..., dict[str, str]],
    pick: Callable[[], dict[str, float]],
    tmp_path: Path,
) -> None:
    env = env_for(HOUSING_DATABASE_TIMEOUT_SECONDS=LOCK_TIMEOUT)
    database = tmp_path / "log.db"
    engine = prediction_log.create_log_engine(f"sqlite:///{database}")
    prediction_log.migrate(engine)  # the log exists (an earlier run), then turns read-only
    engine.dispose()

    database.chmod(0o444)
    try:
        with (
            running_service(env, tmp_path, ready=False, wrapper=unprivileged()) as service,
            service.client() as client,
        ):
            ready = client.get("/ready")
            refused = client.post("/predict", json=pick())
            rejected = client.post("/predict", json={**pick(), "MedInc": -1.0})
            batch = client.post("/predict/batch", json={"houses": [pick(), pick()]})
            rows_while_read_only = log_rows(database)
            writable(database)
            recovered = _wait_ready(client)
            accepted = client.post("/predict", json=pick())
            rows = log_rows(database)
    finally:
        writable(database)

    assert ready.status_code == 503, ready.text
    assert ready.json()["ready"] is False
    assert "readonly" in ready.json()["database"].replace("read-only", "readonly")
    for response in (refused, rejected, batch):
        assert response.status_code == 503, response.text
        assert "cannot be written" in response.json()["detail"]
    assert rows_while_read_only == []
    assert recovered.status_code == 200, f"did not recover once writable: {recovered.text}"
    assert accepted.status_code == 200, accepted.text
    assert [row["id"] for row in rows] == [accepted.json()["prediction_id"]]


STEADY_WRITES = """
import os, sys, threading, time
from housing.service import log

database, interval = sys.argv[1], float(sys.argv[2])
engine = log.create_log_engine(f"sqlite:///{database}", 0.3, background_checkpoints=True)
stop, written = threading.Event(), []


def write():  # the service's writes: a probe commit every few milliseconds
    while not stop.is_set():
        try:
            log.probe(engine)
            written.append(time.monotonic())
        except Exception:
            pass
        time.sleep(interval)


def checkpoint():  # and its checkpoint thread, every second
    while not stop.is_set():
        try:
            log.checkpoint(engine)
        except Exception:
            pass
        time.sleep(1.0)


threads = [threading.Thread(target=write), threading.Thread(target=checkpoint)]
for thread in threads:
    thread.start()
time.sleep(1.5)
print("written while read-only:", len(written), flush=True)
sys.stdin.readline()  # the test makes the files writable, then says so
made_writable, before = time.monotonic(), len(written)
while len(written) == before and time.monotonic() - made_writable < 10:
    time.sleep(0.02)
print("recovered after" if len(written) > before else "not recovered in",
      round(time.monotonic() - made_writable, 2), flush=True)
stop.set()
for thread in threads:
    thread.join()
"""


def test_a_read_only_log_recovers_under_steady_writes(tmp_path: Path) -> None:
    """With writes every few milliseconds and the checkpoint thread, there is never a moment
    with no connection open: the log must still recover once its files are writable again."""
    database = tmp_path / "log.db"
    engine = prediction_log.create_log_engine(f"sqlite:///{database}")
    prediction_log.migrate(engine)
    engine.dispose()
    database.chmod(0o444)
    try:
        child = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
            [*unprivileged(), sys.executable, "-c", STEADY_WRITES, str(database), "0.002"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "written while read-only: 0"
        writable(database)
        child.stdin.write("go\n")
        child.stdin.flush()
        verdict = child.stdout.readline()
        child.wait(30)
    finally:
        writable(database)
    assert verdict.startswith("recovered after"), verdict + child.stdout.read()
