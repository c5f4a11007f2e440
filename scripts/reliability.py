"""`make reliability`: Locust users (50 for 2 minutes by default), mixed predict, batch, feedback
and health, against a real `housing serve` on the configured champion and a fresh prediction log.

Prints requests per endpoint, errors, req/s, p50/p95/p99, and the log's rows per endpoint against
the requests Locust sent; ends with one JSON line. Exits 1 unless there were zero errors and
rows == requests for every logged endpoint (2 if there is no champion to serve).

    .venv/bin/python scripts/reliability.py [--users 50] [--duration 120] [--out var/reliability]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The harness is shared with the reliability tests (tests/reliability/), which drive the same
# server and Locust runs; this script is only its command line.
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from reliability_harness import (  # noqa: E402
    LOGGED,
    run_locust,
    rows_by_endpoint,
    running_service,
    service_env,
)


def _absolute_sqlite(uri: str) -> str:
    """A relative ``sqlite:///file`` URI made absolute (the server runs in a temp folder)."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or not url.database or Path(url.database).is_absolute():
        return uri
    return url.set(database=str(Path(url.database).resolve())).render_as_string(False)


def _champion(tracking_uri: str, name: str) -> str | None:
    from mlflow import MlflowClient

    from housing.registry import champion

    version = champion(MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri), name)
    return None if version is None else str(version.version)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=120, help="Seconds of load.")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="Users started per second.")
    parser.add_argument("--think-min", type=float, default=0.05, help="Seconds between tasks.")
    parser.add_argument("--think-max", type=float, default=0.25)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "reliability")
    args = parser.parse_args()

    from housing.settings import get_settings

    settings = get_settings()
    tracking_uri = _absolute_sqlite(settings.mlflow_tracking_uri)
    data_dir = settings.data_dir.resolve()
    version = _champion(tracking_uri, settings.model_name)
    if version is None:
        print(f"no champion in {tracking_uri}: run `make train` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="housing-reliability-") as tmp:
        workdir = Path(tmp)
        # All Locust users share one address, so the per-client rate limit is off for the run.
        env = service_env(tracking_uri, workdir / "log.db", data_dir)
        env.pop("HOUSING_DRIFT_INTERVAL_SECONDS")  # the monitoring runs as configured
        with running_service(env, workdir) as service:
            result = run_locust(
                service.url,
                data_dir,
                args.out,
                users=args.users,
                seconds=args.duration,
                spawn_rate=args.spawn_rate,
                extra=("--think-min", str(args.think_min), "--think-max", str(args.think_max)),
            )
            rows = rows_by_endpoint(service.database)

    match = all(rows[e] == result.requests.get(e, 0) for e in LOGGED)
    print(f"served {settings.model_name} v{version} from {tracking_uri}")
    print(
        f"{args.users} users for {args.duration} s (spawn {args.spawn_rate}/s, think "
        f"{args.think_min}-{args.think_max} s); reports: {args.out}"
    )
    for endpoint, count in sorted(result.requests.items()):
        logged = f"  log rows {rows[endpoint]}" if endpoint in rows else ""
        print(f"  {endpoint:<16} {count:>7} requests  {result.failures[endpoint]} errors{logged}")
    print(
        f"total {result.total} requests in {result.seconds:.1f} s: {result.rps:.1f} req/s, "
        f"p50 {result.p50_ms:.0f} ms, p95 {result.p95_ms:.0f} ms, p99 {result.p99_ms:.0f} ms, "
        f"{result.errors} errors; rows == requests: {match}"
    )
    line = {
        "users": args.users,
        "seconds": round(result.seconds, 1),
        "requests": result.total,
        "rps": round(result.rps, 1),
        "p50_ms": result.p50_ms,
        "p95_ms": result.p95_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
        "sent": {e: result.requests.get(e, 0) for e in LOGGED},
        "logged_rows": {e: rows[e] for e in LOGGED},
    }
    print(json.dumps(line))
    return 0 if result.errors == 0 and match and result.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
