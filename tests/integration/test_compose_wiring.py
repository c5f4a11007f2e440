"""Proof without Docker: run each docker-compose service's command as a local process.

`make test` runs no Docker engine (`make test-docker` brings the real stack up: test_compose_up.py),
so this test reads docker-compose.yml and the Dockerfile and starts
what they describe, with their environment (compose `environment` over the image's `ENV`),
nothing restated: service hostnames become 127.0.0.1, listening ports become free loopback
ports, and container paths become local ones (named volumes -> temporary folders, bind mounts ->
the repository, /opt/venv -> this virtualenv, WORKDIR -> a temporary working folder holding
params.yaml as the image does). It starts a real `mlflow server`, runs the trainer against it
over HTTP, starts the API (which loads the champion from that server), the UI, Alertmanager and
Prometheus, waits on each like compose does (healthchecks, `service_completed_successfully`),
then runs `housing smoke`. Grafana is the one service left out: there is no Grafana package here.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess  # nosec B404 - the test starts the stack's own processes
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from housing import batches

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OUR_IMAGE_SERVICES = ("mlflow", "trainer", "api", "ui")
# Small grids so the trainer finishes in seconds; everything else is the real params.yaml.
QUICK_CANDIDATES = {
    "linear": {"alpha": [1.0]},
    "random_forest": {"n_estimators": [20], "max_samples": [0.3], "min_samples_leaf": [5]},
    "gradient_boosting": {"max_iter": [60], "learning_rate": [0.2]},
}

# The programs behind the third-party images (the Debian packages install them under these names);
# single-node Alertmanager here: no gossip port.
LOCAL_PROGRAMS = {
    "prom/prometheus": ("prometheus",),
    "prom/alertmanager": ("alertmanager", "prometheus-alertmanager"),
}

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$.

    Hand-written because the reference implementation is the docker CLI, not installed here.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if operator in (":-", ":?") and not value or operator in ("-", "?") and value is None:
            if operator.endswith("?"):
                raise KeyError(f"{name}: {argument}")
            return argument
        return value or ""

    return _VARIABLE.sub(substitute, value)


def image_env(base: Mapping[str, str]) -> dict[str, str]:
    """The runtime stage's ENV of the Dockerfile; `$VAR` expands from ``base`` as Docker does."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    runtime = text.split("AS runtime", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.strip().startswith("ENV "):
            for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line):
                env[key] = re.sub(
                    r"\$\{?(\w+)\}?", lambda m: {**base, **env}.get(m.group(1), ""), value
                )
    return env


def image_workdir() -> str:
    return re.findall(r"^WORKDIR\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def container_port(service: dict[str, Any], env: Mapping[str, str]) -> int | None:
    """The port the service listens on inside its container (the target of `ports`)."""
    for mapping in service.get("ports", []):
        return int(interpolate(str(mapping), env).rsplit(":", 1)[1])
    return None


@dataclass
class Stack:
    """Local stand-ins for the compose stack: ports, paths, processes, logs."""

    tmp: Path
    host_env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # service -> free local port
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = self.tmp / "app"
        self.logs = self.tmp / "logs"
        self.logs.mkdir(parents=True)
        self.listen = {
            name: container_port(service, self.host_env) for name, service in SERVICES.items()
        }
        for name, port in self.listen.items():
            if port:
                self.ports[name] = free_port()

    # --- translating the compose file's view of the world into this machine's ---

    def rewrite_hosts(self, text: str, own: str | None = None) -> str:
        """`service:port` -> `127.0.0.1:free`; a service's own `127.0.0.1:port` likewise."""
        for name, local in self.ports.items():
            text = re.sub(rf"\b{re.escape(name)}:{self.listen[name]}\b", f"127.0.0.1:{local}", text)
        if own in self.ports:
            text = text.replace(f"127.0.0.1:{self.listen[own]}", f"127.0.0.1:{self.ports[own]}")
        return text

    def path_map(self, name: str) -> list[tuple[str, str]]:
        """Container path -> local path for one service, longest first.

        Named volumes become empty folders, bind-mounted folders are used in place, bind-mounted
        files and secrets are written under mounts/<service>/ (see ``materialise``).
        """
        mapping = {"/opt/venv": sys.prefix, image_workdir(): str(self.workdir)}
        mounts = self.tmp / "mounts" / name
        for entry in SERVICES[name].get("volumes", []):
            source, target = interpolate(entry, self.host_env).split(":")[:2]
            if source.startswith((".", "/")):
                local = (ROOT / source).resolve()
                mapping[target] = str(mounts / target.lstrip("/") if local.is_file() else local)
            else:
                mapping[target] = str(self.tmp / "volumes" / source)
        for secret in SERVICES[name].get("secrets", []):
            mapping[secret["target"]] = str(mounts / secret["target"].lstrip("/"))
        return sorted(mapping.items(), key=lambda pair: -len(pair[0]))

    def materialise(self, name: str) -> None:
        """Create the service's volumes, mounted files (hosts and paths made local) and secrets."""
        mapping = dict(self.path_map(name))
        for entry in SERVICES[name].get("volumes", []):
            source, target = interpolate(entry, self.host_env).split(":")[:2]
            local = Path(mapping[target])
            if source.startswith((".", "/")) and (ROOT / source).is_file():
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_text(self.localise((ROOT / source).read_text(), name))
            elif not source.startswith((".", "/")):
                local.mkdir(parents=True, exist_ok=True)
                # A volume mounted inside the workdir (/app/data) is also what the container's
                # relative paths (`data/`) reach: the same folder, not a copy under the workdir.
                inside = (
                    Path(target).relative_to(image_workdir())
                    if target.startswith(image_workdir() + "/")
                    else None
                )
                if inside is not None and not (self.workdir / inside).exists():
                    (self.workdir / inside).parent.mkdir(parents=True, exist_ok=True)
                    (self.workdir / inside).symlink_to(local, target_is_directory=True)
        for secret in SERVICES[name].get("secrets", []):
            variable = COMPOSE["secrets"][secret["source"]]["environment"]
            local = Path(mapping[secret["target"]])
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(self.host_env[variable])

    def localise(self, value: str, name: str) -> str:
        value = self.rewrite_hosts(value, own=name)
        for container, local in self.path_map(name):
            value = re.sub(rf"(?<![\w.]){re.escape(container)}(?=/|$|:|\b)", local, value)
        return value

    def env_for(self, name: str) -> dict[str, str]:
        """The image's ENV, then the service's environment, over a bare base (like a container:
        nothing else of this shell's environment leaks in)."""
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
        layered = image_env(os.environ) if name in OUR_IMAGE_SERVICES else {}
        layered.update(SERVICES[name].get("environment", {}))
        for key, raw in layered.items():
            value = interpolate(str(raw), {**self.host_env, **env})
            env[key] = self.localise(value, name)
        if name in self.ports:  # the entrypoint's HOST/PORT convention
            env.update(HOST="127.0.0.1", PORT=str(self.ports[name]))
        return env

    # --- processes ---

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.materialise(name)
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(  # nosec B603 - the stack's own commands
            args,
            cwd=self.workdir,
            env=env or self.env_for(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def entrypoint_args(self, name: str) -> list[str]:
        command = [interpolate(str(arg), self.host_env) for arg in SERVICES[name]["command"]]
        return [
            "sh",
            str(ROOT / "docker" / "entrypoint.sh"),
            *(self.localise(a, name) for a in command),
        ]

    def binary_args(self, name: str) -> list[str]:
        """A third-party image's command run by the same program installed here (Debian's)."""
        repository = interpolate(SERVICES[name]["image"], {}).split(":")[0]  # the default
        program = next(
            (found for p in LOCAL_PROGRAMS[repository] if (found := shutil.which(p))), None
        )
        if program is None:
            pytest.fail(
                f"{name}: none of {LOCAL_PROGRAMS[repository]} installed (make system-deps)"
            )
        listen = [f"--web.listen-address=127.0.0.1:{self.ports[name]}"]
        extra = ["--cluster.listen-address="] if repository.endswith("alertmanager") else []
        command = [
            self.localise(interpolate(a, self.host_env), name) for a in SERVICES[name]["command"]
        ]
        return [program, *command, *listen, *extra]

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def wait_healthy(self, name: str, timeout: float) -> None:
        """Run the service's compose healthcheck until it passes (compose: service_healthy)."""
        test = SERVICES[name]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        args = [self.localise(arg, name) for arg in test[1:]]
        args[args.index("python")] = sys.executable
        args = [
            str(ROOT / "docker" / "healthcheck.py") if a.endswith("healthcheck.py") else a
            for a in args
        ]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running(name)
            result = subprocess.run(  # nosec B603
                args, env=self.env_for(name), capture_output=True, timeout=10, check=False
            )
            if result.returncode == 0:
                return
            time.sleep(1)
        pytest.fail(f"{name} not healthy within {timeout:.0f} s:\n{self.log(name)}")

    def assert_running(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def wait_completed(self, name: str, timeout: float) -> None:
        """Wait for a one-shot service to exit 0 (compose: service_completed_successfully)."""
        try:
            code = self.processes[name].wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running after {timeout:.0f} s:\n{self.log(name)}")
        assert code == 0, f"{name} exited with {code}:\n{self.log(name)}"

    def stop_all(self) -> None:
        """Stop in reverse start order, like compose: SIGTERM, then SIGKILL after 10 s."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def depends_on(name: str) -> dict[str, str]:
    return {dep: spec["condition"] for dep, spec in SERVICES[name].get("depends_on", {}).items()}


def quick_params(source: Path, target: Path) -> None:
    """params.yaml with small candidate grids (what the image copies to its WORKDIR)."""
    params = yaml.safe_load(source.read_text())
    params["train"]["candidates"] = QUICK_CANDIDATES
    params["train"]["cv_folds"] = 2
    params["train"]["importance_rows"] = 200
    params["train"]["latency_repeats"] = 5
    target.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # What a user sets on the host: the required secrets and, offline, the dataset mount (else
    # the trainer's scikit-learn downloads the data into the sklearn-data volume).
    host_env = {
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(8),
        "HOUSING_API_KEY": secrets.token_hex(16),
    }
    if offline_copy := os.environ.get("SCIKIT_LEARN_DATA"):
        host_env["SCIKIT_LEARN_DATA_DIR"] = offline_copy
    built = Stack(tmp_path, host_env)
    built.workdir.mkdir()
    quick_params(ROOT / "params.yaml", built.workdir / "params.yaml")
    try:
        yield built
    finally:
        built.stop_all()


def get_json(url: str) -> Any:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_for(what: str, probe: Any, timeout: float, stack: Stack, name: str) -> Any:
    """Poll ``probe()`` until it returns something truthy (Prometheus scrapes on its own clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.assert_running(name)
        try:
            if result := probe():
                return result
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"{name}: {what} not seen within {timeout:.0f} s:\n{stack.log(name)}")


def test_the_compose_stack_runs_as_wired(stack: Stack) -> None:
    from mlflow import MlflowClient

    from housing.registry import champion

    # Compose order: mlflow healthy -> trainer completed -> api healthy -> ui; prometheus after
    # the api and alertmanager started.
    assert depends_on("trainer") == {"mlflow": "service_healthy"}
    assert depends_on("api") == {
        "mlflow": "service_healthy",
        "trainer": "service_completed_successfully",
    }
    assert depends_on("ui") == {"api": "service_healthy"}

    stack.start("mlflow", stack.entrypoint_args("mlflow"))
    stack.wait_healthy("mlflow", timeout=60)

    stack.start("trainer", stack.entrypoint_args("trainer"))
    stack.wait_completed("trainer", timeout=150)
    mlflow_url = stack.env_for("trainer")["MLFLOW_TRACKING_URI"]
    assert mlflow_url == f"http://127.0.0.1:{stack.ports['mlflow']}"
    # The model went through the server into the artifacts volume; runs into the db volume.
    assert any((stack.tmp / "volumes" / "mlflow-artifacts").rglob("MLmodel"))
    assert (stack.tmp / "volumes" / "mlflow-db" / "mlflow.db").exists()
    model_name = stack.env_for("api")["HOUSING_MODEL_NAME"]
    best = champion(MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url), model_name)
    assert best is not None, f"no champion registered:\n{stack.log('trainer')}"

    stack.start("api", stack.entrypoint_args("api"))
    stack.wait_healthy("api", timeout=90)
    api_url = f"http://127.0.0.1:{stack.ports['api']}"
    model = get_json(f"{api_url}/model")
    assert str(model["version"]) == str(best.version), model

    stack.start("ui", stack.entrypoint_args("ui"))
    stack.start("alertmanager", stack.binary_args("alertmanager"))
    stack.start("prometheus", stack.binary_args("prometheus"))
    stack.wait_healthy("ui", timeout=60)
    assert stack.env_for("ui")["HOUSING_API_URL"] == api_url  # the UI's API is the running one

    smoke = subprocess.run(  # nosec B603 - the project's own command
        [sys.executable, "-m", "housing.cli", "smoke", "--url", api_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr + stack.log("api")
    # The prediction log is on the api's volume.
    assert any((stack.tmp / "volumes" / "predictions").glob("*.db"))

    # The closed loop's uploads land on the data volume, which the trainer made a DVC repository:
    # a batch uploaded through the api is pinned by `dvc add` there (what a retrain does first).
    data_volume = stack.tmp / "volumes" / "housing-data"
    assert (data_volume / ".dvc").is_dir(), stack.log("trainer")
    labelled = (data_volume / "processed" / "train.csv").read_text().splitlines()[:51]
    stored = httpx.post(
        f"{api_url}/data/upload",
        content="\n".join(labelled).encode(),
        headers={"Content-Type": "text/csv", "X-API-Key": stack.host_env["HOUSING_API_KEY"]},
        timeout=30,
    )
    assert stored.status_code == 201, stored.text
    pinned = batches.snapshot(data_volume)
    assert pinned is not None and pinned["files"] == 2, pinned  # the batch and its index
    assert (data_volume / "batches.dvc").is_file()

    prometheus = f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1"

    def api_target_up() -> bool:
        targets = get_json(f"{prometheus}/targets")["data"]["activeTargets"]
        return any(t["scrapeUrl"].startswith(api_url) and t["health"] == "up" for t in targets)

    wait_for("the api target up", api_target_up, 60, stack, "prometheus")

    def rules_evaluated_ok() -> list[Any]:
        groups = get_json(f"{prometheus}/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert not [r for r in rules if r["health"] == "err"], rules
        return rules if rules and all(r["health"] == "ok" for r in rules) else []

    wait_for("every alert rule evaluated", rules_evaluated_ok, 60, stack, "prometheus")
    alertmanagers = get_json(f"{prometheus}/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in alertmanagers] == [
        f"http://127.0.0.1:{stack.ports['alertmanager']}/api/v2/alerts"
    ]
    status = get_json(f"http://127.0.0.1:{stack.ports['alertmanager']}/api/v2/status")
    assert "housing-retrain" in status["config"]["original"]
