"""A live API for the UI tests: real uvicorn serving a real champion on a free loopback port,
with a real SQLite log seeded with real traffic. Shared by the AppTest and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "frontend" / "app.py"
HOUSING = Path(sys.executable).with_name("housing")
ADMIN_KEY = "ui-test-admin-key"  # nosec B105 - a throwaway secret for the tests' APIs
READ_KEY = "ui-test-read-key"  # nosec B105 - the same, for reading the log
LINEAR_ONLY = {
    "seed": 42,
    "cv_folds": 2,
    "n_neighbors": 10,
    "importance_rows": 100,
    "latency_repeats": 3,
    "candidates": {"linear": {"alpha": [1.0]}},
}
"""``train:`` params of one quick candidate, for tests that need another training run: the
UI is under test there, not the training."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail with the server's output if it dies or hangs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"server exited with {process.returncode}:\n{out[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"{url} did not answer within {seconds:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Terminate a server we started (and only that one)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class LiveApi:
    """A running API and what the tests sent it."""

    url: str
    tracking_uri: str
    data_dir: Path
    process: subprocess.Popen


def api_env(tracking_uri: str, data_dir: Path, database: Path) -> dict[str, str]:
    """The service's environment: temp registry, temp log, quick drift job."""
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HOUSING_DATABASE_URL": f"sqlite:///{database}",
        "HOUSING_DATA_DIR": str(data_dir),
        "HOUSING_RATE_LIMIT": "off",
        "HOUSING_DRIFT_INTERVAL_SECONDS": "2",
        "HOUSING_DRIFT_MIN_ROWS": "200",
        "HOUSING_DRIFT_WINDOW_ROWS": "400",
        "HOUSING_RELOAD_INTERVAL_SECONDS": "3600",
        "HOUSING_READ_KEYS": READ_KEY,
    }


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """`housing serve` on ``port``, output to ``log``."""
    handle = log.open("w")
    return subprocess.Popen(  # nosec B603
        [str(HOUSING), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=log.parent,
    )


class ReturningApi:
    """An API on a port chosen up front that runs only while a test says so: pages are opened
    while nothing listens there, then it comes (back) up at the same URL."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it (if it is not running) and wait until it is ready."""
        if self.process is None or self.process.poll() is not None:
            port = int(self.url.rsplit(":", 1)[1])
            self.process = start_api(self.env, port, self.log)
            wait_for(f"{self.url}/ready", self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


def seed(url: str, data_dir: Path) -> None:
    """Real traffic in two phases, each followed by a drift result: held-out houses (batch,
    singles with feedback, refused requests), then held-out houses with incomes up 30%."""
    from housing.monitoring.shifts import richer

    test = pd.read_csv(data_dir / "processed" / "test.csv")
    features = test.drop(columns=["MedHouseVal"])
    with httpx.Client(base_url=url, timeout=30) as http:
        batch = {"houses": features.head(300).to_dict("records")}
        http.post("/predict/batch", json=batch).raise_for_status()
        for i, house in enumerate(features.head(20).to_dict("records")):
            single = http.post("/predict", json=house).raise_for_status().json()
            label = {
                "prediction_id": single["prediction_id"],
                "actual": test.MedHouseVal[i],
                "feedback_token": single["feedback_token"],
            }
            http.post("/feedback", json=label).raise_for_status()
        bad = {**features.iloc[0].to_dict(), "AveBedrms": 50.0}
        for _ in range(3):
            assert http.post("/predict", json=bad).status_code == 422
        wait_for_drift(url, results=1)
        shifted = {"houses": richer(features.iloc[300:600]).to_dict("records")}
        http.post("/predict/batch", json=shifted).raise_for_status()
        wait_for_drift(url, results=2)


def wait_for_drift(url: str, results: int = 2, seconds: float = 60.0) -> None:
    """Wait until the API's background job has stored ``results`` drift results."""
    deadline = time.monotonic() + seconds
    read = {"X-API-Key": READ_KEY}
    while len(httpx.get(f"{url}/drift/history", headers=read, timeout=5).json()) < results:
        if time.monotonic() > deadline:
            pytest.fail(f"the API computed no drift result within {seconds:.0f} s")
        time.sleep(0.5)
