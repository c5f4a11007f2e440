"""`housing bench`: load-test the service against a bare FastAPI ceiling and `mlflow models serve`.

All three run in one go, one after the other, each as one uvicorn worker on a free loopback
port, loaded by ``wrk`` with the same connections and duration: the service (serving the
registry's champion, logging to a fresh SQLite file), a bare FastAPI app taking the same
``House`` body and returning a constant (the ceiling), and ``mlflow models serve`` on the same
registered model. The Lua script counts every request wrk writes, so the log can be checked
against it (rows logged == requests sent).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess  # nosec B404
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from housing.features import FEATURE_NAMES, typical_row
from housing.service.settings import ServiceSettings

log = logging.getLogger(__name__)

UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--workers", "1"]


class BenchError(RuntimeError):
    """The benchmark cannot run (message says what is missing)."""


@dataclass(frozen=True)
class BenchConfig:
    """How hard and how long to load each server."""

    duration: int = 10
    connections: int = 16
    threads: int = 2
    warmup: int = 2
    bodies: int = 200
    rate_limit: str = ""
    mlflow: bool = True
    startup_timeout: float = 120.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_houses(count: int, seed: int = 7) -> list[dict[str, float]]:
    """Real block groups from the dataset (valid per the API's rules), or typical ones."""
    from housing.service.schemas import House

    try:
        from sklearn.datasets import fetch_california_housing

        frame = fetch_california_housing(as_frame=True, download_if_missing=False).frame
        rows = frame.sample(count, random_state=seed)[list(FEATURE_NAMES)]
        houses = [{k: float(v) for k, v in row.items()} for row in rows.to_dict("records")]
    except OSError:  # no local copy of the dataset: typical houses are valid too
        houses = [typical_row()] * count
    return [House.model_validate(house).__dict__ for house in houses]


def lua_script(bodies: list[str]) -> str:
    """wrk script: POST the bodies round-robin, count requests written, print a JSON summary."""
    quoted = ",\n".join(json.dumps(body) for body in bodies)
    return f"""
local bodies = {{
{quoted}
}}
local requests = {{}}
local threads = {{}}
local i = 0
sent = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
  end
end

function request()
  i = i % #requests + 1
  sent = sent + 1
  return requests[i]
end

function done(summary, latency, _)
  -- wrk calls request() once on its first thread to check the script (script_verify_request)
  -- and sends nothing then: that call is not a request.
  local total = -1
  for _, thread in ipairs(threads) do
    total = total + thread:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    '{{"completed": %d, "sent": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "non_2xx": %d}}\\n',
    summary.requests, total, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status, e.status))
end
"""


def run_wrk(url: str, script: Path, config: BenchConfig, duration: int) -> dict[str, Any]:
    """Run wrk and return the JSON line its script printed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (apt-get install wrk, or `make system-deps`)")
    command = [
        wrk,
        f"-t{config.threads}",
        f"-c{config.connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    # A fixed argv and no shell.
    result = subprocess.run(  # nosec B603
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return json.loads(lines[-1])


@contextmanager
def server(
    command: list[str], env: dict[str, str], ready_url: str, timeout: float
) -> Iterator[None]:
    """Start a server in its own process group, wait until ``ready_url`` answers 200, stop it."""
    with tempfile.TemporaryFile() as output:
        # An argv built here and no shell.
        process = subprocess.Popen(  # nosec B603
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_ready(process, ready_url, timeout, output)
            yield
        finally:
            _stop(process)


def _wait_ready(process: subprocess.Popen, url: str, timeout: float, output: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output.seek(0)
            tail = output.read().decode(errors="replace")[-2000:]
            raise BenchError(f"{process.args[0]} exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise BenchError(f"{url} was not ready after {timeout:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (mlflow serve has children), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _settled_count(engine: Any, endpoint: str) -> int:
    """Rows in the log once writes stop arriving (requests in flight when wrk stopped)."""
    from housing.service import log as prediction_log

    last, stable = -1, 0
    while stable < 3:
        count = prediction_log.count_rows(engine, endpoint)
        stable = stable + 1 if count == last else 0
        last = count
        time.sleep(0.2)
    return last


def _measure(url: str, script: Path, config: BenchConfig) -> dict[str, Any]:
    if config.warmup:
        run_wrk(url, script, config, config.warmup)
    return run_wrk(url, script, config, config.duration)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    seconds = result["duration_us"] / 1e6
    return {
        "rps": round(result["completed"] / seconds, 1),
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "errors": result["errors"],
        "sent": result["sent"],
    }


def run(settings: ServiceSettings, config: BenchConfig) -> dict[str, Any]:
    """Benchmark the three servers; the result has the keys of the README's JSON line."""
    from housing.service import log as prediction_log
    from housing.service.model import ModelHolder
    from housing.service.metrics import build_metrics

    champion = ModelHolder(settings, build_metrics())._resolve(
        settings.model_name, settings.model_alias
    )
    if champion is None:
        raise BenchError(
            f"{settings.model_name} has no {settings.model_alias!r}: run `housing train`"
        )
    houses = sample_houses(config.bodies)
    python = sys.executable
    bindir = str(Path(python).parent)
    with tempfile.TemporaryDirectory(prefix="housing-bench-") as tmp:
        work = Path(tmp)
        service_lua, mlflow_lua = work / "service.lua", work / "mlflow.lua"
        service_lua.write_text(lua_script([json.dumps(h) for h in houses]))
        records = [json.dumps({"dataframe_records": [h]}) for h in houses]
        mlflow_lua.write_text(lua_script(records))
        database = f"sqlite:///{work / 'bench.db'}"
        env = {
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": str(settings.model_threads),
            "HOUSING_DATABASE_URL": database,
            "HOUSING_RATE_LIMIT": config.rate_limit,
            "HOUSING_LOG_LEVEL": "WARNING",
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "HOUSING_MODEL_NAME": settings.model_name,
        }
        results: dict[str, Any] = {"model_version": str(champion.version)}

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = [python, "-m", "housing.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with server(serve, env, f"{base}/ready", config.startup_timeout):
            engine = prediction_log.create_log_engine(database)
            if config.warmup:
                run_wrk(f"{base}/predict", service_lua, config, config.warmup)
            before = _settled_count(engine, prediction_log.PREDICT)
            service = _summary(run_wrk(f"{base}/predict", service_lua, config, config.duration))
            service["logged_rows"] = _settled_count(engine, prediction_log.PREDICT) - before
            engine.dispose()
        results["service"] = service
        log.info("service: %s", service)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        bare = [python, "-m", "uvicorn", "housing.service.ceiling:create_app", "--factory"]
        bare += ["--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS]
        with server(bare, env, f"{base}/health", config.startup_timeout):
            results["ceiling"] = _summary(_measure(f"{base}/predict", service_lua, config))
        log.info("ceiling: %s", results["ceiling"])

        if config.mlflow:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            uri = f"models:/{settings.model_name}/{champion.version}"
            mlflow = [python, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager"]
            mlflow += ["local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
            with server(mlflow, env, f"{base}/ping", config.startup_timeout):
                results["mlflow"] = _summary(_measure(f"{base}/invocations", mlflow_lua, config))
            log.info("mlflow: %s", results["mlflow"])
    return results


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The README's JSON line."""
    service = results["service"]
    return {
        "rps": service["rps"],
        "p50_ms": service["p50_ms"],
        "p99_ms": service["p99_ms"],
        "errors": service["errors"],
        "sent": service["sent"],
        "logged_rows": service["logged_rows"],
        "ceiling_rps": results["ceiling"]["rps"],
        "mlflow_rps": results["mlflow"]["rps"] if "mlflow" in results else None,
    }


def verdict(line: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each True when met."""
    targets = {
        "rps >= 60% of ceiling": line["rps"] >= 0.6 * line["ceiling_rps"],
        "p99 <= 30 ms": line["p99_ms"] <= 30,
        "zero errors": line["errors"] == 0,
        "logged rows == sent": line["logged_rows"] == line["sent"],
    }
    if line["mlflow_rps"]:
        targets["rps >= 8x mlflow"] = line["rps"] >= 8 * line["mlflow_rps"]
    return targets
