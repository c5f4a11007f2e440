"""`make run`, the newcomer's first command, as the README gives it: from a shell without the
venv on PATH it prepares the data, trains because no champion exists, starts the API and the UI
and prints both URLs; Ctrl-C stops both; a second `make run` does not train again; and if
the UI cannot start, the API does not outlive `make run`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess  # nosec B404 - runs make on the project's own Makefile
from pathlib import Path

import httpx
import pytest
import yaml

from processes import BIN, ROOT, free_port, wait_until, without_venv

VENV = BIN.parent


class MakeRun:
    """`make run` in its own process group (as a terminal runs it), output to a file."""

    def __init__(self, repo: Path, env: dict[str, str], api: int, ui: int, log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        make = shutil.which("make")
        assert make, "make is needed"
        args = [make, "-f", str(ROOT / "Makefile"), "-C", str(repo), f"VENV={VENV}"]
        # -o: the install stamp counts as done (the venv running this test is installed).
        args += ["-o", f"{VENV}/.installed-runtime", "run", f"API_PORT={api}", f"UI_PORT={ui}"]
        self.process = subprocess.Popen(  # nosec B603 - fixed argv, no shell
            args,
            cwd=repo,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def group_alive(self) -> bool:
        self.process.poll()  # reap make itself: a zombie still counts as a group member
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        if self.group_alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.handle.close()


def ready(api: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{api}/ready", timeout=5).status_code == 200


def ui_healthy(ui: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{ui}/_stcore/health", timeout=5).text == "ok"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.posix
def test_make_run_trains_once_serves_api_and_ui_and_stops_on_ctrl_c(
    tmp_path: Path, quick_train_params: dict
) -> None:
    assert os.environ.get("SCIKIT_LEARN_DATA"), "set SCIKIT_LEARN_DATA (the offline dataset)"
    repo = tmp_path / "repo"
    repo.mkdir()
    # Real params, training cut to one candidate (the wiring is under test, not the models).
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] = quick_train_params | {
        "candidates": {"linear": quick_train_params["candidates"]["linear"]}
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    dropped = ("HOUSING_", "MLFLOW_", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env |= {"PATH": without_venv(env.get("PATH", "")), "HOME": str(tmp_path / "home")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert shutil.which("housing", path=env["PATH"]) is None, "housing is on PATH outside the venv"

    api, ui = free_port(), free_port()
    first = MakeRun(repo, env, api, ui, tmp_path / "first.log")
    try:
        wait_until(lambda: ready(api), 240, f"the API of `make run`: {first.output()[-2000:]}")
        wait_until(lambda: ui_healthy(ui), 60, "the UI of `make run`")
        out = first.output()
        assert f"API: http://127.0.0.1:{api}" in out and f"UI:  http://127.0.0.1:{ui}" in out
        assert "wrote data/processed" in out and "registered california-housing v1" in out
        assert (repo / "data" / "processed" / "train.csv").is_file()
        model = httpx.get(f"http://127.0.0.1:{api}/model", timeout=5).json()
        assert model["version"] == "1" and model["name"] == "california-housing"
        schema = httpx.get(f"http://127.0.0.1:{api}/schema", timeout=5).json()
        house = {f["name"]: f["typical"] for f in schema["features"]}
        answer = httpx.post(f"http://127.0.0.1:{api}/predict", json=house, timeout=5)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        assert (repo / "var" / "predictions.db").is_file()  # the default log, in the project

        first.interrupt()
        wait_until(lambda: not first.group_alive(), 30, "`make run` to stop on Ctrl-C")
        assert port_free(api) and port_free(ui), "a server outlived `make run`"
    finally:
        first.kill()

    api, ui = free_port(), free_port()
    second = MakeRun(repo, env, api, ui, tmp_path / "second.log")
    try:
        wait_until(lambda: ready(api), 120, f"the second `make run`: {second.output()[-2000:]}")
        out = second.output()
        assert "champion: v1 linear" in out and "already there, not trained" in out
        assert "registered" not in out
        model = httpx.get(f"http://127.0.0.1:{api}/model", timeout=5).json()
        assert model["version"] == "1"
        second.interrupt()
        wait_until(lambda: not second.group_alive(), 30, "the second `make run` to stop")
    finally:
        second.kill()

    # The UI cannot start (its port is taken): `make run` fails and takes the API down with it.
    api = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        third = MakeRun(repo, env, api, taken.getsockname()[1], tmp_path / "third.log")
        try:
            third.process.wait(timeout=120)
            assert third.process.returncode != 0
            assert f"Port {taken.getsockname()[1]} is not available" in third.output()
            wait_until(lambda: not third.group_alive(), 30, "the API to stop with `make run`")
            assert port_free(api)
        finally:
            third.kill()
