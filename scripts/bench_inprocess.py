"""CPU per request of the service app and of the bench's ceiling app, driven in-process.

No HTTP and no load generator: 16 concurrent clients call the ASGI app directly on one uvloop
loop, so the figure is what the app itself costs per request (uvicorn's share is the same for
both). Serves the registry's champion (``MLFLOW_TRACKING_URI``, default ``sqlite:///mlflow.db``)
and logs to a throwaway SQLite file. Usage::

    .venv/bin/python scripts/bench_inprocess.py [service|ceiling ...] [--requests N]

For the split by function, run it under a sampling profiler, e.g.
``py-spy record -f raw -o profile.txt -- .venv/bin/python scripts/bench_inprocess.py service``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

CLIENTS = 16


def _scope(path: str, length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _request(app: Any, body: bytes) -> int:
    """One POST /predict through the app; its status code."""
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope("/predict", len(body)), receive, send)
    return status[0]


async def _client(app: Any, bodies: list[bytes], count: int, offset: int) -> None:
    for k in range(count):
        status = await _request(app, bodies[(offset * 31 + k) % len(bodies)])
        if status != 200:
            raise RuntimeError(f"POST /predict answered {status}")


async def _measure(which: str, bodies: list[bytes], requests: int) -> dict[str, Any]:
    lifespan = None
    if which == "ceiling":
        from housing.service.ceiling import create_app

        app = create_app()
    else:
        from api.main import create_app

        app = create_app()
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
    try:
        per_client = max(1, requests // CLIENTS)
        await asyncio.gather(*(_client(app, bodies, 50, i) for i in range(CLIENTS)))  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(_client(app, bodies, per_client, i) for i in range(CLIENTS)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        if lifespan is not None:
            await lifespan.__aexit__(None, None, None)
    done = per_client * CLIENTS
    return {
        "app": which,
        "requests": done,
        "cpu_us_per_request": round(cpu / done * 1e6, 1),
        "wall_us_per_request": round(wall / done * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("apps", nargs="*", default=["ceiling", "service"])
    parser.add_argument("--requests", type=int, default=8000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="housing-inprocess-") as tmp:
        os.environ["HOUSING_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'log.db'}"
        os.environ["HOUSING_RATE_LIMIT"] = ""  # as in `housing bench`: one client address
        os.environ.setdefault("HOUSING_LOG_LEVEL", "WARNING")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import uvloop

        from housing.service.bench import sample_houses

        bodies = [json.dumps(house).encode() for house in sample_houses(200)]
        for which in args.apps:
            print(json.dumps(uvloop.run(_measure(which, bodies, args.requests))))  # noqa: T201


if __name__ == "__main__":
    main()
