"""Real processes for the reliability tests and `make reliability`: the API under uvicorn
(`housing serve`), Locust, an MLflow tracking server; and the prediction log read back.

Every process runs in its own session on a free loopback port and is stopped (or killed) by
its context manager, so a failing test leaves nothing behind.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCUSTFILE = ROOT / "tests" / "load" / "locustfile.py"
LOGGED = ("/predict", "/predict/batch", "/feedback")
"""Endpoints that write one log row per request."""
API_KEY = "reliability-test-key"  # noqa: S105 (a throwaway key for servers the tests start)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(
    tracking_uri: str, database: Path, data_dir: Path, **overrides: str
) -> dict[str, str]:
    """The environment of a service under test: ours, never the developer's HOUSING_*/MLFLOW_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOUSING_", "MLFLOW_"))}
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        HOUSING_DATABASE_URL=f"sqlite:///{database}",
        HOUSING_DATA_DIR=str(data_dir),
        HOUSING_API_KEY=API_KEY,
        HOUSING_RATE_LIMIT="off",
        # The drift job runs once at start (no rows yet: nothing to compute) and then rests.
        HOUSING_DRIFT_INTERVAL_SECONDS="3600",
        HOUSING_LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


@dataclass
class Service:
    """A running `housing serve` process."""

    url: str
    process: subprocess.Popen
    log_path: Path
    database: Path

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server (and anything it started)."""
        os.killpg(self.process.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)


def _wait_until_up(service: Service, ready: bool, timeout: float) -> None:
    """Poll /health (and /ready when asked) until it answers 200, the process dies, or time out."""
    path = "/ready" if ready else "/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(base_url=service.url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                code, log = service.process.returncode, service.log_text()[-3000:]
                raise RuntimeError(f"server exited with {code}:\n{log}")
            try:
                response = client.get(path)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
    raise RuntimeError(f"{path} not 200 after {timeout} s ({last}):\n{service.log_text()[-3000:]}")


def start_service(
    env: dict[str, str], workdir: Path, name: str = "api", wrapper: tuple[str, ...] = ()
) -> Service:
    """Start `housing serve` on a free loopback port (returns at once; see ``wait_until_up``).
    ``wrapper`` prefixes the command (e.g. setpriv, to run it with fewer privileges)."""
    port = free_port()
    log_path = workdir / f"{name}-{port}.log"
    database = Path(env["HOUSING_DATABASE_URL"].removeprefix("sqlite:///"))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own console script, fixed arguments)
            [*wrapper, str(BIN / "housing"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(f"http://127.0.0.1:{port}", process, log_path, database)


def stop_process(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after ``grace`` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        process.wait(timeout=10)


@contextmanager
def running_service(
    env: dict[str, str],
    workdir: Path,
    *,
    ready: bool = True,
    timeout: float = 120.0,
    name: str = "api",
    wrapper: tuple[str, ...] = (),
) -> Iterator[Service]:
    """A started service (ready, or only live when ``ready`` is False), stopped on exit."""
    service = start_service(env, workdir, name, wrapper)
    try:
        _wait_until_up(service, ready, timeout)
        yield service
    finally:
        stop_process(service.process)


def wait_until_up(service: Service, ready: bool = True, timeout: float = 120.0) -> None:
    """Public form of the start-up wait (for services started with ``start_service``)."""
    _wait_until_up(service, ready, timeout)


# --- the prediction log, read directly from the SQLite file ------------------------------------


def log_rows(database: Path, where: str = "", params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Rows of the prediction log (read-only connection: the test never writes the log)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        query = "SELECT * FROM prediction_log" + (f" WHERE {where}" if where else "")
        return connection.execute(query, params).fetchall()
    finally:
        connection.close()


def rows_by_endpoint(database: Path) -> dict[str, int]:
    """How many log rows each logged endpoint has."""
    counts = dict.fromkeys(LOGGED, 0)
    for row in log_rows(database):
        counts[row["endpoint"]] = counts.get(row["endpoint"], 0) + 1
    return counts


def logged_ids(database: Path) -> set[str]:
    """Every id in the log (request ids; feedback rows have their own)."""
    return {row["id"] for row in log_rows(database)}


# --- Locust -----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one headless Locust run measured (from its final JSON statistics)."""

    requests: dict[str, int]
    failures: dict[str, int]
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    seconds: float
    acknowledged: list[str] = field(default_factory=list)
    exit_code: int = 0
    output: str = ""

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def errors(self) -> int:
        return sum(self.failures.values())


def _percentile(histogram: dict[int, int], fraction: float) -> float:
    """Locust's own rounded-response-time histogram read at ``fraction`` (as its CSV does)."""
    total = sum(histogram.values())
    if not total:
        return float("nan")
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= fraction * total:
            return float(value)
    return float(max(histogram))


def summarise(entries: list[dict[str, Any]]) -> LoadResult:
    """Per-endpoint counts and aggregated req/s and percentiles from ``--json-file`` output."""
    histogram: dict[int, int] = {}
    requests: dict[str, int] = {}
    failures: dict[str, int] = {}
    for entry in entries:
        requests[entry["name"]] = requests.get(entry["name"], 0) + entry["num_requests"]
        failures[entry["name"]] = failures.get(entry["name"], 0) + entry["num_failures"]
        for value, count in entry["response_times"].items():
            histogram[int(float(value))] = histogram.get(int(float(value)), 0) + count
    started = min((e["start_time"] for e in entries), default=0.0)
    ended = max((e["last_request_timestamp"] or 0.0 for e in entries), default=0.0)
    seconds = max(ended - started, 1e-9)
    return LoadResult(
        requests=requests,
        failures=failures,
        rps=sum(requests.values()) / seconds,
        p50_ms=_percentile(histogram, 0.50),
        p95_ms=_percentile(histogram, 0.95),
        p99_ms=_percentile(histogram, 0.99),
        seconds=seconds,
    )


def run_locust(
    url: str,
    data_dir: Path,
    out_dir: Path,
    *,
    users: int,
    seconds: int,
    spawn_rate: float | None = None,
    extra: tuple[str, ...] = (),
) -> LoadResult:
    """Run tests/load/locustfile.py headless against ``url``; reports go to ``out_dir``.

    Figures come from ``--json-file``, written after the stop timeout let every user finish
    (Locust's ``--csv`` stats are written before that and miss the last requests)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ids_file, stats_file = out_dir / "acknowledged.txt", out_dir / "stats"
    command = [
        str(BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate or users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "30",
        "--host",
        url,
        "--html",
        str(out_dir / "locust.html"),
        "--json-file",
        str(stats_file),
        "--ids-file",
        str(ids_file),
        "--only-summary",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "HOUSING_DATA_DIR"}
    env["HOUSING_DATA_DIR"] = str(data_dir)
    completed = subprocess.run(  # noqa: S603 (our venv's locust, fixed arguments)
        command,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 180,
        check=False,
    )
    output = completed.stdout + completed.stderr
    json_path = stats_file.with_suffix(".json")
    if not json_path.is_file():
        raise RuntimeError(f"locust wrote no statistics (exit {completed.returncode}):\n{output}")
    result = summarise(json.loads(json_path.read_text(encoding="utf-8")))
    result.acknowledged = ids_file.read_text(encoding="utf-8").split()
    result.exit_code = completed.returncode
    result.output = output
    return result


# --- MLflow tracking server -------------------------------------------------------------------


@dataclass
class MlflowServer:
    url: str
    port: int
    process: subprocess.Popen


def start_mlflow_server(backend_uri: str, workdir: Path, port: int) -> MlflowServer:
    """Start `mlflow server` and wait until its /health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    log_path = workdir / f"mlflow-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our venv's mlflow, fixed arguments)
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                backend_uri,
                "--default-artifact-root",
                (workdir / "mlflow-artifacts").as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", port, process)
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{log_path.read_text()[-3000:]}")
            try:
                if client.get(f"{server.url}/health").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.3)
    stop_process(process)
    raise RuntimeError(f"mlflow server not healthy after 120 s:\n{log_path.read_text()[-3000:]}")


# --- concurrent clients that record every outcome -----------------------------------------------


@dataclass
class Outcome:
    """One request as the client saw it (``status`` None: no answer, see ``error``)."""

    path: str
    started: float
    ended: float
    status: int | None = None
    request_id: str | None = None
    body: Any = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and bool(self.request_id)


Request = tuple[str, dict[str, Any]]
"""(path, JSON body) of one POST."""


class Hammer:
    """Client threads POSTing until stopped; every request's outcome is kept, in order."""

    def __init__(self, url: str, make_request: Callable[[int], Request], threads: int = 8) -> None:
        self.url = url
        self.make_request = make_request
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def wait_for(self, acknowledged: int, timeout: float = 60.0) -> None:
        """Block until at least ``acknowledged`` requests got a 2xx (or fail)."""
        deadline = time.monotonic() + timeout
        while self.count_acknowledged() < acknowledged:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.count_acknowledged()} acknowledged after {timeout} s: "
                    f"{self.outcomes[-3:]}"
                )
            time.sleep(0.05)

    def count_acknowledged(self) -> int:
        with self._lock:
            return sum(o.acknowledged for o in self.outcomes)

    def _loop(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60.0) as client:
            while not self._stop.is_set():
                path, body = self.make_request(index)
                started = time.monotonic()
                try:
                    response = client.post(path, json=body)
                except httpx.TransportError as exc:
                    outcome = Outcome(path, started, time.monotonic(), error=repr(exc))
                    time.sleep(0.05)  # the server is gone: do not spin
                else:
                    try:
                        parsed = response.json()
                    except ValueError:
                        parsed = response.text
                    outcome = Outcome(
                        path,
                        started,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("X-Request-ID"),
                        parsed,
                    )
                with self._lock:
                    self.outcomes.append(outcome)
