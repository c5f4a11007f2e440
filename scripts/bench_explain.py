"""Latency of POST /explain and /explain/what-if on one uvicorn worker, under /predict load.

One service process (one worker, the registry's champion, a fresh SQLite log, rate limits
off) on a free loopback port. In one run:

1. ``wrk`` loads /predict alone: its p50/p99 are the reference;
2. ``wrk`` loads /predict again while one client sends /explain for one house after another
   (closed loop, real houses from the dataset): /explain's p50/p99, and /predict's p99 beside it;
3. the same client sends /explain/what-if with 40 points, /predict idle: its p50.

Prints one JSON object: the figures, /predict's p99 ratio (with explain / alone) and whether each
target holds (/explain p50 <= 100 ms and p99 <= 250 ms, ratio <= 1.2, what-if p50 <= 50 ms).
Usage: ``python scripts/bench_explain.py [--seconds 20] [--connections 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from housing.service.bench import (
    UVICORN_FLAGS,
    BenchConfig,
    free_port,
    lua_script,
    run_wrk,
    sample_houses,
    server,
)
from housing.service.settings import ServiceSettings

TARGETS = {"explain_p50_ms": 100.0, "explain_p99_ms": 250.0, "predict_p99_ratio": 1.2,
           "what_if_p50_ms": 50.0}  # fmt: skip


def closed_loop(url: str, bodies: list[dict], stop: threading.Event, limit: int) -> list[float]:
    """Send ``bodies`` round-robin, one at a time, until ``stop`` or ``limit``; milliseconds."""
    timings: list[float] = []
    with httpx.Client(timeout=30) as client:
        while not stop.is_set() and len(timings) < limit:
            body = bodies[len(timings) % len(bodies)]
            start = time.perf_counter()
            response = client.post(url, json=body)
            timings.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
    return timings


def percentiles(timings: list[float]) -> dict[str, float]:
    values = np.asarray(timings)
    return {"p50_ms": round(float(np.percentile(values, 50)), 1),
            "p99_ms": round(float(np.percentile(values, 99)), 1), "count": len(values)}  # fmt: skip


def predict_load(base: str, script: Path, config: BenchConfig) -> dict[str, float]:
    result = run_wrk(f"{base}/predict", script, config, config.duration)
    seconds = result["duration_us"] / 1e6
    return {"rps": round(result["completed"] / seconds, 1),
            "p50_ms": round(result["p50_us"] / 1000, 2),
            "p99_ms": round(result["p99_us"] / 1000, 2), "errors": result["errors"]}  # fmt: skip


def measure(base: str, houses: list[dict], config: BenchConfig) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as folder:
        script = Path(folder) / "predict.lua"
        script.write_text(lua_script([json.dumps(h) for h in houses]))
        closed_loop(f"{base}/explain", houses, threading.Event(), 5)  # warm up
        run_wrk(f"{base}/predict", script, config, 2)
        alone = predict_load(base, script, config)
        stop = threading.Event()
        timings: list[float] = []
        explainer = threading.Thread(
            target=lambda: timings.extend(closed_loop(f"{base}/explain", houses, stop, 10**6))
        )
        explainer.start()
        loaded = predict_load(base, script, config)
        stop.set()
        explainer.join()
    what_if = [{"house": h, "feature": "MedInc", "points": 40} for h in houses]
    curve = closed_loop(f"{base}/explain/what-if", what_if, threading.Event(), 200)
    return {"predict_alone": alone, "predict_with_explain": loaded,
            "explain": percentiles(timings), "what_if_40": percentiles(curve)}  # fmt: skip


def verdict(result: dict) -> dict:
    ratio = result["predict_with_explain"]["p99_ms"] / result["predict_alone"]["p99_ms"]
    result["predict_p99_ratio"] = round(ratio, 3)
    figures = {"explain_p50_ms": result["explain"]["p50_ms"],
               "explain_p99_ms": result["explain"]["p99_ms"], "predict_p99_ratio": ratio,
               "what_if_p50_ms": result["what_if_40"]["p50_ms"]}  # fmt: skip
    result["targets_met"] = {key: figures[key] <= limit for key, limit in TARGETS.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="each /predict load phase")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument(
        "--explain-predict", choices=["served", "pipeline"], default="served",
        help="HOUSING_EXPLAIN_PREDICT: coalitions through treelite (served) or scikit-learn",
    )  # fmt: skip
    args = parser.parse_args()
    settings = ServiceSettings()
    config = BenchConfig(duration=args.seconds, connections=args.connections, threads=1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-explain-log-") as folder:
        env = {**os.environ, "HOUSING_DATABASE_URL": f"sqlite:///{folder}/log.db",
               "HOUSING_RATE_LIMIT": "", "HOUSING_EXPLAIN_RATE_LIMIT": "",
               "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
               "HOUSING_LOG_LEVEL": "WARNING",
               "HOUSING_EXPLAIN_PREDICT": args.explain_predict}  # fmt: skip
        command = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
                   "--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS]  # fmt: skip
        with server(command, env, f"{base}/ready", config.startup_timeout):
            result = measure(base, sample_houses(100), config)
    result["command"] = " ".join(sys.argv)
    print(json.dumps(verdict(result), indent=2))


if __name__ == "__main__":
    main()
