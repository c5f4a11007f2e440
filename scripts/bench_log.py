"""Benchmark of the prediction log at scale (`make bench-log`): the issue-19 targets, measured.

    python scripts/bench_log.py                       # 0.1M and 5M rows
    python scripts/bench_log.py --sizes 100000 1000000

For each size it grows a SQLite log of the service's own schema (migrations to head) with rows
shaped like the service's: 86 % accepted /predict, 5 % 422, 3 % batches of 5, 4 % accepted
feedback, 1 % refused feedback, 0.98 % 429 and 0.02 % 503, spread over 90 days up to now,
written by executemany in big transactions. Then it starts the real service on it (`housing
serve`, the champion in $MLFLOW_TRACKING_URI: run `make train` first) and measures:

- every filter the UI's History page offers (time range x status x endpoint), the way the UI
  reads it (pages of 500 by cursor, up to 2,000 rows): the first call of the cold-started
  service, then p99 over repeated calls (warm cache); the longest read, any 503, the WAL size;
- POST /predict under wrk (same load at every size);
- at the largest size: wrk while `housing log purge` deletes 30 days (retention 60 days,
  archive first), the file size after the purge and its incremental vacuum against the size
  of the live rows alone (`VACUUM INTO` a copy).

Prints one JSON line per size and a final JSON line with the targets' ratios. The drift check
runs once an hour during the measurements (Evidently's CPU would blur the comparison), and the
service's own background purge is off (the benchmark runs the purge itself).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sqlite3
import statistics
import subprocess  # nosec B404 - runs the project's own CLI with fixed arguments
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from housing.service import log as prediction_log
from housing.service.bench import (
    BenchConfig,
    _summary,
    free_port,
    lua_script,
    run_wrk,
    sample_houses,
    server,
)

log = logging.getLogger("bench_log")

DAYS = 90
PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
PERIODS |= {"30d": timedelta(days=30), "all": None}
STATUSES = [None, 200, 422, 413, 429, 500, 503]
ENDPOINTS = [None, "/predict", "/predict/batch", "/feedback"]
UI_ROWS, PAGE = 2000, 500
CHUNK = 100_000


def _stamp(moment: datetime) -> str:
    """created_at as SQLAlchemy stores it in SQLite (naive UTC, microseconds)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _id(moment: datetime, rng: random.Random) -> str:
    return f"{int(moment.timestamp() * 1000):012x}7{rng.getrandbits(76):019x}"


def _row(kind: float, at: datetime, rng: random.Random, bodies: list[str], state: dict) -> dict:
    """One log row of the service's shape (``kind`` in [0, 1) picks which)."""
    row: dict[str, Any] = {"id": _id(at, rng), "created_at": _stamp(at), "latency_ms": 4.2}
    body = bodies[rng.randrange(len(bodies))]
    if kind < 0.86:
        row.update(endpoint="/predict", status=200, inputs=body, prediction=2.1)
        row.update(model_name="california-housing", model_version="1")
        state["predicted"].append((row["id"], row["created_at"]))
    elif kind < 0.91:
        row.update(endpoint="/predict", status=422, inputs=state["invalid"])
        row["error"] = '[{"field":"body.MedInc","rule":"greater_than","message":"must be > 0"}]'
    elif kind < 0.94:
        row.update(endpoint="/predict/batch", status=200, inputs="[" + ",".join([body] * 5) + "]")
        row.update(predictions="[2.1,2.2,2.3,2.4,2.5]", model_version="1")
    elif kind < 0.98 and state["predicted"]:
        target, predicted_at = state["predicted"].pop()
        row.update(endpoint="/feedback", status=200, feedback_for=target, feedback_key=target)
        row.update(inputs=f'{{"prediction_id":"{target}","actual":2.0}}', actual=2.0)
        row.update(prediction=2.1, predicted_at=predicted_at, model_version="1")
    elif kind < 0.99:
        row.update(endpoint="/feedback", status=404, inputs='{"prediction_id":"x","actual":1}')
        row["error"] = '"no prediction with this id"'
    elif kind < 0.9998:
        row.update(endpoint="/predict", status=429, inputs=body)
        row["error"] = '"rate limit exceeded"'
    else:
        row.update(endpoint="/predict", status=503, inputs=body, error='"log unavailable"')
    return row


def grow(path: Path, rows: int, end: datetime, seed: int = 0) -> dict[str, Any]:
    """A log of ``rows`` rows over ``DAYS`` days up to ``end`` (schema by the migrations)."""
    engine = prediction_log.create_log_engine(f"sqlite:///{path}")
    prediction_log.migrate(engine)
    engine.dispose()
    rng = random.Random(seed)
    bodies = [json.dumps(house) for house in sample_houses(200)]
    columns = prediction_log.COLUMNS
    insert = f"INSERT INTO prediction_log ({', '.join(columns)}) "
    insert += f"VALUES ({', '.join('?' * len(columns))})"
    step = timedelta(days=DAYS) / rows
    invalid = json.dumps(dict(json.loads(bodies[0]), MedInc=-1.0))
    start, state = end - timedelta(days=DAYS), {"predicted": [], "invalid": invalid}
    started = time.monotonic()
    connection = sqlite3.connect(path)
    # Bulk load: no journal, indexes built once at the end (a sort, not 5M random inserts).
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'prediction_log'"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    for first in range(0, rows, CHUNK):
        batch = []
        for n in range(first, min(rows, first + CHUNK)):
            row = _row(rng.random(), start + step * n, rng, bodies, state)
            batch.append(tuple(row.get(name) for name in columns))
        state["predicted"] = state["predicted"][-1000:]  # feedback comes soon after
        with connection:
            connection.executemany(insert, batch)
    with connection:
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("ANALYZE")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    return {"rows": rows, "seconds": round(time.monotonic() - started, 1), "bytes": _size(path)}


def _size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _filters(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for period, span in PERIODS.items():
        for status in STATUSES:
            for endpoint in ENDPOINTS:
                params: dict[str, Any] = {"limit": PAGE}
                if span is not None:
                    since = (now - span).replace(second=0, microsecond=0)
                    params["since"] = since.isoformat()
                if status is not None:
                    params["status"] = status
                if endpoint is not None:
                    params["endpoint"] = endpoint
                out.append((f"{period} status={status} endpoint={endpoint}", params))
    return out


def _ui_read(client: httpx.Client, params: dict[str, Any]) -> tuple[list[float], int]:
    """The History page's read: pages of 500 by cursor up to 2,000 rows; (latencies, 503s)."""
    latencies, unavailable, rows, cursor = [], 0, 0, None
    while rows < UI_ROWS:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        started = time.perf_counter()
        response = client.get("/predictions", params=query)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code == 503:
            unavailable += 1
            break
        response.raise_for_status()
        page = response.json()
        rows += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return latencies, unavailable


class WalWatch:
    """Polls the WAL's size in a thread; ``peak`` is the largest seen."""

    def __init__(self, database: Path) -> None:
        self.wal = database.with_name(database.name + "-wal")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.wal.stat().st_size)
            except FileNotFoundError:
                pass

    def __enter__(self) -> WalWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_filters(base: str, now: datetime, repeats: int, database: Path) -> dict[str, Any]:
    """Cold first call of each filter, then ``repeats`` warm reads each."""
    cold: list[float] = []
    warm: dict[str, list[float]] = {}
    unavailable = 0
    with httpx.Client(base_url=base, timeout=30) as client, WalWatch(database) as wal:
        for name, params in _filters(now):
            latencies, refused = _ui_read(client, params)
            cold.append(latencies[0])
            unavailable += refused
            samples: list[float] = []
            for _ in range(repeats):
                latencies, refused = _ui_read(client, params)
                samples.extend(latencies)
                unavailable += refused
            warm[name] = samples
    every = [value for samples in warm.values() for value in samples]
    p99 = {name: _percentile(samples, 0.99) for name, samples in warm.items()}
    worst = max(p99, key=p99.__getitem__)
    return {
        "filters": len(warm),
        "requests": len(every),
        "warm_p50_ms": round(statistics.median(every), 2),
        "warm_p99_ms": round(_percentile(every, 0.99), 2),
        "worst_filter_p99_ms": round(p99[worst], 2),
        "worst_filter": worst,
        "cold_first_call_max_ms": round(max(cold), 1),
        "longest_read_ms": round(max(max(every), max(cold)), 1),
        "read_503s": unavailable,
        "wal_peak_bytes": wal.peak,
    }


def _env(database: Path, archive: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOUSING_DATABASE_URL": f"sqlite:///{database}",
        "HOUSING_RATE_LIMIT": "",
        "HOUSING_LOG_LEVEL": "WARNING",
        "HOUSING_DRIFT_INTERVAL_SECONDS": "3600",
        "HOUSING_LOG_RETENTION_DAYS": "0",
        "HOUSING_LOG_ARCHIVE_DIR": str(archive),
    }


def _wrk(base: str, script: Path, config: BenchConfig) -> dict[str, Any]:
    run_wrk(f"{base}/predict", script, config, config.warmup)
    return _summary(run_wrk(f"{base}/predict", script, config, config.duration))


def measure_purge(
    base: str, script: Path, config: BenchConfig, database: Path, env: dict[str, str]
) -> dict[str, Any]:
    """wrk windows while `housing log purge` deletes 30 days (retention 60 of the 90 days)."""
    purge_env = {**env, "HOUSING_LOG_RETENTION_DAYS": str(DAYS - 30)}
    command = [sys.executable, "-m", "housing.cli", "log", "purge", "--json"]
    started = time.monotonic()
    with WalWatch(database) as wal:
        process = subprocess.Popen(  # nosec B603 - our CLI, fixed arguments
            command, env=purge_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        windows = []
        while process.poll() is None:
            windows.append(_summary(run_wrk(f"{base}/predict", script, config, config.duration)))
        out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"housing log purge failed: {err}")
    return {
        "purge": json.loads(out.strip().splitlines()[-1]),
        "purge_seconds": round(time.monotonic() - started, 1),
        "windows": windows,
        "p99_ms_max_window": max(w["p99_ms"] for w in windows),
        "p99_ms_median_window": statistics.median(w["p99_ms"] for w in windows),
        "wal_peak_bytes": wal.peak,
    }


def compact_bytes(database: Path) -> int:
    """The size of the live rows alone: the database copied by ``VACUUM INTO``."""
    copy = database.with_name("compact.db")
    copy.unlink(missing_ok=True)
    connection = sqlite3.connect(database)
    connection.execute("VACUUM INTO ?", (str(copy),))
    connection.close()
    size = copy.stat().st_size
    copy.unlink()
    return size


def bench_size(
    rows: int, work: Path, config: BenchConfig, repeats: int, purge: bool
) -> dict[str, Any]:
    database, archive = work / f"log-{rows}.db", work / f"archive-{rows}"
    now = datetime.now(UTC)
    result: dict[str, Any] = {"rows": rows, "grow": grow(database, rows, now)}
    log.info("grew %s", result["grow"])
    script = work / "predict.lua"
    script.write_text(lua_script([json.dumps(h) for h in sample_houses(200)]))
    env = _env(database, archive)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "housing.cli", "serve", "--host", "127.0.0.1"]
    started = time.monotonic()
    with server([*serve, "--port", str(port)], env, f"{base}/ready", 600):
        result["start_seconds"] = round(time.monotonic() - started, 1)
        result["reads"] = measure_filters(base, now, repeats, database)
        log.info("reads %s", result["reads"])
        result["predict"] = _wrk(base, script, config)
        log.info("predict %s", result["predict"])
        if purge:
            result["during_purge"] = measure_purge(base, script, config, database, env)
            log.info("purge %s", result["during_purge"])
    if purge:
        engine = prediction_log.create_log_engine(f"sqlite:///{database}")
        prediction_log.checkpoint(engine)
        engine.dispose()
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        result["after_purge_bytes"] = _size(database)
        result["live_rows_bytes"] = compact_bytes(database)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=5, help="Warm UI reads per filter.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    parser.add_argument("--dir", type=Path, default=None, help="Work folder (default: a temp).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = BenchConfig(duration=args.duration, connections=16, threads=2, warmup=2)
    sizes = sorted(args.sizes)
    results = []
    with tempfile.TemporaryDirectory(prefix="housing-bench-log-", dir=args.dir) as tmp:
        for rows in sizes:
            result = bench_size(rows, Path(tmp), config, args.repeats, rows == sizes[-1])
            print(json.dumps(result), flush=True)  # noqa: T201 (the benchmark's output)
            results.append(result)
            for leftover in Path(tmp).glob(f"log-{rows}.db*"):
                if rows != sizes[-1]:
                    leftover.unlink()
    print(json.dumps(targets(results)), flush=True)  # noqa: T201


def targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets from the measured figures (ratios against the same run)."""
    small, large = results[0], results[-1]
    out: dict[str, Any] = {
        "sizes": [r["rows"] for r in results],
        "reads_worst_filter_p99_ms": large["reads"]["worst_filter_p99_ms"],
        "reads_longest_ms": large["reads"]["longest_read_ms"],
        "reads_503s": large["reads"]["read_503s"],
        "predict_p99_ms": {str(r["rows"]): r["predict"]["p99_ms"] for r in results},
        "predict_p99_ratio": round(large["predict"]["p99_ms"] / small["predict"]["p99_ms"], 2),
    }
    purge = large.get("during_purge")
    if purge:
        out["purge_p99_ratio_max_window"] = round(
            purge["p99_ms_max_window"] / large["predict"]["p99_ms"], 2
        )
        out["purge_deleted"] = purge["purge"]["deleted"]
        out["after_purge_vs_live_bytes"] = round(
            large["after_purge_bytes"] / large["live_rows_bytes"], 3
        )
    return out


if __name__ == "__main__":
    main()
