"""The service as a real server: `housing serve` (uvicorn) on a free loopback port.

SIGKILL loses no acknowledged request; promoting a new version under load fails no request
and switches the answers; a prediction log that cannot be written answers 503 and fails
/ready, and both recover when it can be written again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # the service's test tools

from service_tools import API_KEY, register_candidate  # noqa: E402

from housing.features import typical_row  # noqa: E402
from housing.service import log as prediction_log  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    database: Path
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(registry_copy: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """`housing serve` on the copied registry, polling it every 0.3 s (``--workers``: the
    indirect parameter, 1 by default)."""
    workers = getattr(request, "param", 1)
    port = free_port()
    database = tmp_path / "predictions.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry_copy,
        "HOUSING_DATABASE_URL": f"sqlite:///{database}",
        "HOUSING_DATABASE_TIMEOUT_SECONDS": "0.3",
        "HOUSING_RELOAD_INTERVAL_SECONDS": "0.3",
        "HOUSING_RATE_LIMIT": "",
        "HOUSING_API_KEY": API_KEY,
    }
    command = [sys.executable, "-m", "housing.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.2)
        yield Server(url, process, database, tmp_path / "server.log")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@dataclass
class Load:
    """Client threads sending requests until stopped; records what was acknowledged."""

    url: str
    acknowledged: dict[str, int] = field(default_factory=dict)
    versions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, worker: int) -> None:
        houses = [typical_row(), dict(typical_row(), AveBedrms=9.0, AveRooms=3.0)]
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                invalid = (n + worker) % 5 == 0
                try:
                    response = client.post("/predict", json=houses[invalid])
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}")
                    continue
                self.acknowledged[response.headers["X-Request-ID"]] = response.status_code
                if response.status_code == 200:
                    self.versions.append(response.json()["model_version"])
                elif response.status_code != 422:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")


@pytest.fixture
def load(server: Server) -> Iterator[Load]:
    load = Load(server.url)
    threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(6)]
    for thread in threads:
        thread.start()
    yield load
    load.stop.set()
    for thread in threads:
        thread.join(15)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigkill_loses_no_acknowledged_request(server: Server, load: Load) -> None:
    wait_until(lambda: len(load.acknowledged) >= 300, 60, "too few requests were served")
    server.process.send_signal(signal.SIGKILL)  # no shutdown, no flush: only commits survive
    server.process.wait(10)
    load.stop.set()
    time.sleep(0.5)
    acknowledged = dict(load.acknowledged)
    engine = prediction_log.create_log_engine(f"sqlite:///{server.database}")
    rows = {row["id"]: row["status"] for row in prediction_log.page(engine, limit=1_000_000)}
    engine.dispose()
    missing = {rid: status for rid, status in acknowledged.items() if rows.get(rid) != status}
    assert not missing, f"{len(missing)} acknowledged requests not in the log: {missing}"
    assert {200, 422} <= set(acknowledged.values())
    assert len(rows) >= len(acknowledged)


def test_promotion_under_load_fails_nothing_and_switches_version(
    server: Server, load: Load, registry_copy: str
) -> None:
    wait_until(lambda: len(load.versions) >= 100, 60, "no traffic")
    version = register_candidate(registry_copy, "linear")
    wait_until(lambda: load.versions[-1] == version, 60, "the service did not switch")
    served = len(load.versions)
    wait_until(lambda: len(load.versions) >= served + 100, 60, "traffic stopped after the swap")
    load.stop.set()
    assert load.failures == []
    switch = load.versions.index(version)
    assert set(load.versions[:switch]) == {"1"} and set(load.versions[switch:]) == {version}
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'housing_model_reloads_total{result="success"} 2.0' in metrics


def test_an_unwritable_log_gives_503_and_not_ready_until_it_recovers(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/predict", json=typical_row()).status_code == 200
        blocker = sqlite3.connect(server.database, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the log's write lock
        try:
            refused = client.post("/predict", json=typical_row())
            assert refused.status_code == 503
            assert refused.json() == {
                "detail": "the prediction log cannot be written; try again later"
            }
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["ready"] is False
            assert ready.json()["database"].startswith("not writable")
            rejected = client.post("/predict", json={"MedInc": 1.0})  # cannot be logged either
            assert rejected.status_code == 503
        finally:
            blocker.rollback()
            blocker.close()
        assert client.get("/ready").status_code == 200
        served = client.post("/predict", json=typical_row())
        assert served.status_code == 200
    engine = prediction_log.create_log_engine(f"sqlite:///{server.database}")
    ids = {row["id"] for row in prediction_log.page(engine, limit=100)}
    engine.dispose()
    assert served.json()["prediction_id"] in ids


def test_bench_load_counts_every_request_it_sends(server: Server, tmp_path: Path) -> None:
    """The benchmark's wrk script counts requests exactly: the log gets one row per request."""
    import shutil

    from housing.service.bench import BenchConfig, lua_script, run_wrk, sample_houses

    if shutil.which("wrk") is None:
        pytest.fail("wrk is missing: run scripts/system-deps.sh (make system-deps)")
    script = tmp_path / "load.lua"
    script.write_text(lua_script([json.dumps(house) for house in sample_houses(20)]))
    engine = prediction_log.create_log_engine(f"sqlite:///{server.database}")
    before = prediction_log.count_rows(engine)
    result = run_wrk(f"{server.url}/predict", script, BenchConfig(connections=8, threads=2), 2)
    time.sleep(1.0)  # requests in flight when wrk stopped are still answered and logged
    logged = prediction_log.count_rows(engine) - before
    engine.dispose()
    assert result["errors"] == 0 and result["completed"] > 50
    assert logged == result["sent"] >= result["completed"]


def metric_samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of metric ``name`` in Prometheus text (labels as written)."""
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, value = line.rsplit(" ", 1)
            samples[series[len(name) :]] = float(value)
    return samples


@pytest.mark.parametrize("server", [2], indirect=True)
def test_two_workers_share_one_log_and_report_one_serving_version(
    server: Server, load: Load, registry_copy: str
) -> None:
    """`housing serve --workers 2`: both workers log to the one database, both switch to a new
    champion, and /metrics (Prometheus' multiprocess mode) sums the requests of both and names
    one serving version, not the one a worker served before."""
    wait_until(lambda: len(load.versions) >= 100, 60, "no traffic")
    version = register_candidate(registry_copy, "linear")
    wait_until(
        lambda: len(load.versions) > 50 and set(load.versions[-50:]) == {version},
        60,
        "both workers serve the new champion",
    )
    load.stop.set()
    time.sleep(0.5)
    assert load.failures == []
    metrics = httpx.get(f"{server.url}/metrics").text
    info = {k: v for k, v in metric_samples(metrics, "housing_model_info").items() if v}
    assert len(info) == 1, info
    (series,) = info
    assert f'version="{version}"' in series and 'candidate="linear"' in series, series
    engine = prediction_log.create_log_engine(f"sqlite:///{server.database}")
    logged = prediction_log.count_rows(engine, prediction_log.PREDICT)
    engine.dispose()
    counted = metric_samples(metrics, "housing_requests_total")
    assert sum(v for k, v in counted.items() if 'endpoint="/predict"' in k) == logged
    assert logged >= len(load.acknowledged) > 100
    # One series per monitoring gauge, not one per worker process.
    assert list(metric_samples(metrics, "housing_drift_share")) == [""]


def test_logs_are_json_lines_that_never_hold_a_request_body(server: Server) -> None:
    """Structured logs at INFO: one JSON object per line; the bodies stay in the database."""
    canary = 31.4159265  # out of range for MedInc: a 422 the service logs at INFO
    with httpx.Client(base_url=server.url, timeout=10) as client:
        rejected = client.post("/predict", json=typical_row() | {"MedInc": canary})
        accepted = client.post("/predict", json=typical_row() | {"Population": 2718.2818})
    assert (rejected.status_code, accepted.status_code) == (422, 200)
    request_id = rejected.headers["X-Request-ID"]
    wait_until(lambda: request_id in server.log.read_text(), 10, "the rejection is logged")
    text = server.log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    (rejection,) = [r for r in records if r.get("request_id") == request_id]
    assert rejection["level"] == "INFO" and rejection["status"] == 422
    assert str(canary) not in text and "2718.2818" not in text
