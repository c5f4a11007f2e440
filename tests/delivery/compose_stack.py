"""A docker-compose project of this repository in a real Docker engine, for the docker tests.

A plain module (not conftest.py), like ``delivery_tools``. ``make test-docker`` prepares the engine
(scripts/test-docker.sh); this module only drives ``docker compose`` and ``docker inspect``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess  # nosec B404 - drives the docker CLI on fixed argument lists
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from delivery_tools import ROOT

PORT_VARIABLES = {
    "mlflow": "MLFLOW_PORT",
    "api": "HOUSING_API_PORT",
    "ui": "HOUSING_UI_PORT",
    "prometheus": "PROMETHEUS_PORT",
    "alertmanager": "ALERTMANAGER_PORT",
    "grafana": "GRAFANA_PORT",
}
"""The compose file's host-port variables; the test gives each a free loopback port."""
PROJECT_LABEL = "com.docker.compose.project"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker() -> str:
    path = shutil.which("docker")
    if path is None:
        pytest.fail("no docker CLI on PATH: run `make test-docker` (it installs and starts one)")
    return path


@dataclass
class ComposeProject:
    """One uniquely named compose project: its variables, files and the commands on it."""

    name: str
    env: dict[str, str]
    files: Sequence[Path]
    ports: dict[str, int] = field(default_factory=dict)

    def run(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose -p NAME -f ... ARGS``; a failure names the command and its output."""
        files = [arg for path in self.files for arg in ("-f", str(path))]
        command = [docker(), "compose", "-p", self.name, *files, *args]
        result = subprocess.run(  # nosec B603 - the docker CLI, fixed arguments
            command,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`docker compose {' '.join(args)}` exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{self.logs()}"
            )
        return result

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A plain ``docker`` command in the project's environment (never raises)."""
        return subprocess.run(  # nosec B603 - the docker CLI, fixed arguments
            [docker(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def logs(self, tail: int = 40) -> str:
        """The last lines of every service's log, for failure messages."""
        files = [arg for path in self.files for arg in ("-f", str(path))]
        result = subprocess.run(  # nosec B603 - the docker CLI, fixed arguments
            [docker(), "compose", "-p", self.name, *files, "logs", "--no-color", f"--tail={tail}"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout[-8000:]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def containers(self, all_states: bool = True) -> list[dict[str, Any]]:
        """``docker compose ps --format json`` rows (one JSON object per line in Compose v2)."""
        args = ["ps", "--format", "json", *(["-a"] if all_states else [])]
        output = self.run(*args, timeout=60).stdout.strip()
        if output.startswith("["):  # older v2 releases print one array
            return json.loads(output)
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def container(self, service: str) -> dict[str, Any]:
        """``docker inspect`` of the service's (only) container."""
        (row,) = [c for c in self.containers() if c["Service"] == service]
        result = self.docker("inspect", row["ID"])
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]

    def wait_healthy(self, service: str, timeout: float = 180) -> None:
        """Until the service's HEALTHCHECK reports healthy (after a restart it starts over)."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            state = self.container(service)["State"]
            status = state.get("Health", {}).get("Status")
            if status == "healthy":
                return
            if state["Status"] not in ("running", "restarting", "created"):
                break
            time.sleep(2)
        pytest.fail(f"{service} not healthy ({status}) within {timeout:.0f} s:\n{self.logs()}")

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes still labelled with this project."""
        label = f"label={PROJECT_LABEL}={self.name}"
        found = {}
        for kind, args in (
            ("containers", ["ps", "-a", "-q", "--filter", label]),
            ("networks", ["network", "ls", "-q", "--filter", label]),
            ("volumes", ["volume", "ls", "-q", "--filter", label]),
        ):
            result = self.docker(*args)
            assert result.returncode == 0, result.stderr
            found[kind] = result.stdout.split()
        return found

    def remove_leftovers(self) -> dict[str, list[str]]:
        """``down -v``, then force-remove anything still labelled; what had to be forced."""
        self.run("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180, check=False)
        left = self.leftovers()
        for kind, command in (("containers", ["rm", "-f"]), ("networks", ["network", "rm"])):
            if left[kind]:
                self.docker(*command, *left[kind])
        if left["volumes"]:
            self.docker("volume", "rm", "-f", *left["volumes"])
        return {kind: ids for kind, ids in left.items() if ids}


def poll(what: str, probe: Callable[[], Any], timeout: float, project: ComposeProject) -> Any:
    """Call ``probe`` until it returns something truthy (errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if result := probe():
                return result
        except Exception as exc:  # noqa: BLE001 - any failure of a probe means "not yet"
            last = exc
        time.sleep(2)
    pytest.fail(f"{what} not seen within {timeout:.0f} s (last error: {last!r}):\n{project.logs()}")


def host_env(extra: dict[str, str]) -> dict[str, str]:
    """This shell's environment (DOCKER_CONFIG, BASE_IMAGE, ... from make test-docker) plus
    ``extra``; compose variables of the developer's own shell that would change the stack are
    dropped."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HOUSING_", "COMPOSE_"))}
    return {**keep, **extra}
