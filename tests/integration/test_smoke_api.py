"""`housing smoke` against a real API (uvicorn on loopback, the champion of a real registry)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess  # nosec B404 - the test starts the project's own server
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from housing.smoke import failed, run_smoke

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(tracking_uri: str, tmp_path: Path, wait_for: str) -> Iterator[str]:
    """`housing serve` on a free loopback port until ``wait_for`` answers 200; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HOUSING_DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
    }
    env.pop("HOUSING_API_KEY", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # nosec B603 - the project's own command
            [
                sys.executable,
                "-m",
                "housing.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"housing serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}{wait_for}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{wait_for} did not answer 200 within 60 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def test_smoke_passes_against_a_real_api_serving_the_champion(
    trained_registry: str, tmp_path: Path
) -> None:
    with serving(trained_registry, tmp_path, wait_for="/ready") as url:
        result = subprocess.run(  # nosec B603 - the project's own command
            [sys.executable, "-m", "housing.cli", "smoke", "--url", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:5]] == [
        ["ok", name] for name in ("health", "ready", "predict", "invalid", "metrics")
    ]
    assert lines[-1] == f"smoke test of {url} passed (5 checks)"


def test_smoke_names_the_checks_an_api_without_a_model_fails(tmp_path: Path) -> None:
    empty_registry = f"sqlite:///{tmp_path / 'empty-mlflow.db'}"
    with serving(empty_registry, tmp_path, wait_for="/health") as url:
        results = run_smoke(url)
    names = failed(results)
    assert "health" not in names
    assert {"ready", "predict"} <= set(names), results
