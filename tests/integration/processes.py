"""Helpers the integration tests share: free ports, Debian tools, polling, child servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess  # nosec B404 - starts the project's own servers
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
"""The venv's bin folder (the venv running the tests)."""


def without_venv(path: str) -> str:
    """PATH without this venv's bin: what a shell that never activated the venv has."""
    venv_bin = BIN.resolve()
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and Path(p).resolve() != venv_bin)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run scripts/system-deps.sh (make system-deps)")
    return path


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Server:
    """A child process whose output goes to a file; stopped (and killed if need be) at the end."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(  # nosec B603 - fixed executables, test arguments
            args, stdout=self.handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.handle.close()
