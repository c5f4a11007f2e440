"""What the request-head cap costs: uvicorn's httptools protocol vs ``HeadCappedHttpToolsProtocol``
on a trivial ASGI app (so only the protocol differs), measured with wrk, interleaved.

    .venv/bin/python scripts/bench_httpcap.py [--seconds 5] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess  # nosec B404 - starts uvicorn and wrk, fixed arguments
import sys
import time
from pathlib import Path

import httpx

PROTOCOLS = {
    "httptools": "httptools",
    "head-capped": "housing.service.httpcap:HeadCappedHttpToolsProtocol",
}


async def app(scope, receive, send) -> None:
    """Answer every request with 2 bytes (lifespan events are ignored)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def requests_per_second(http: str, seconds: int, connections: int) -> float:
    port = free_port()
    server = subprocess.Popen(  # nosec B603
        [sys.executable, "-m", "uvicorn", "bench_httpcap:app",
         "--app-dir", str(Path(__file__).parent), "--port", str(port), "--http", http,
         "--loop", "uvloop", "--log-level", "warning", "--lifespan", "off"],
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        out = subprocess.run(  # nosec B603 B607
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    for _ in range(args.rounds):
        for name, http in PROTOCOLS.items():
            results[name].append(requests_per_second(http, args.seconds, args.connections))
    for name, values in results.items():
        print(f"{name:12s} req/s per round: {', '.join(f'{v:,.0f}' for v in values)}")
    ratio = sum(results["head-capped"]) / sum(results["httptools"])
    print(f"head-capped / httptools: {ratio:.3f}")


if __name__ == "__main__":
    main()
