"""`housing train/promote/rollback` through Typer's runner: one-line errors, no traceback."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner, Result

from housing import data
from housing.cli import app
from housing.registry import aliases
from housing.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
NAME = "california-housing"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real prepared data (train/test split of the real dataset) in a temporary directory."""
    directory = tmp_path_factory.mktemp("cli-data") / "data"
    data.prepare(directory, data.load_params(ROOT / "params.yaml"))
    return directory


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the CLI from ``tmp_path`` with the project's params and the given overrides."""

    def apply(**variables: str) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HOUSING_PARAMS_FILE", str(ROOT / "params.yaml"))
        monkeypatch.setenv("HOUSING_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        for key, value in variables.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    return apply


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_train_without_data_says_run_housing_data(env, tmp_path: Path) -> None:
    env()
    result = run("train")
    assert_one_line_error(result, "no prepared data", "run `housing data`")
    assert not (tmp_path / "mlflow.db").exists()  # nothing created before the data check
    assert not (tmp_path / "reports").exists()


def test_train_with_unreachable_tracking_server_fails_fast(env, prepared: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    env(HOUSING_DATA_DIR=str(prepared), MLFLOW_TRACKING_URI=uri)
    started = time.monotonic()
    result = run("train", "--json")
    elapsed = time.monotonic() - started
    assert_one_line_error(result, f"cannot reach the MLflow tracking store {uri}")
    assert result.stdout == ""
    assert elapsed < 20, f"took {elapsed:.0f} s: MLflow is retrying"


@pytest.mark.parametrize("command", [["rollback"], ["promote", "--version", "1"]])
def test_registry_commands_with_unreachable_server(env, command: list[str]) -> None:
    env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{closed_port()}")
    assert_one_line_error(run(*command), "cannot reach the MLflow tracking store")


@pytest.mark.parametrize("command", [["rollback"], ["promote", "--version", "1"]])
def test_registry_commands_on_an_empty_registry(env, command: list[str]) -> None:
    env()
    assert_one_line_error(run(*command), f"no registered model '{NAME}'", "housing train")


def test_promote_rejects_a_version_below_one(env) -> None:
    env()
    result = run("promote", "--version", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_train_without_a_train_section_in_params(env, tmp_path: Path, prepared: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  test_size: 0.2\n  seed: 42\n  reference_size: 10\n")
    env(HOUSING_PARAMS_FILE=str(params), HOUSING_DATA_DIR=str(prepared))
    assert_one_line_error(run("train"), "no `train:` section")


@pytest.mark.parametrize(
    "candidates, message",
    [
        ("xgboost: {max_depth: [3]}", "unknown candidate(s) ['xgboost']"),
        ("random_forest: {depth: [3]}", "'depth' is not a parameter of RandomForestRegressor"),
        ("gradient_boosting: {learning_rate: [-1]}", "'learning_rate' parameter"),
        ("linear: {alpha: []}", "linear: empty value list for ['alpha']"),
    ],
)
def test_train_rejects_bad_candidate_grids(
    env, tmp_path: Path, prepared: Path, candidates: str, message: str
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"train:\n  candidates:\n    {candidates}\n")
    env(HOUSING_PARAMS_FILE=str(params), HOUSING_DATA_DIR=str(prepared))
    assert_one_line_error(run("train"), str(params), message)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.fixture
def registry_copy(trained_registry: str, tmp_path: Path) -> str:
    """A private copy of the shared trained registry (aliases live in the database file)."""
    source = Path(trained_registry.removeprefix("sqlite:///"))
    shutil.copy(source, tmp_path / "copy.db")
    return f"sqlite:///{tmp_path / 'copy.db'}"


def _data_dir(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///")).parent / "data"


def test_if_no_champion_skips_training_when_one_exists(
    env, trained_registry: str, registry_copy: str, tmp_path: Path
) -> None:
    env(MLFLOW_TRACKING_URI=registry_copy, HOUSING_DATA_DIR=str(_data_dir(trained_registry)))
    result = run("train", "--if-no-champion", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["skipped"] is True and summary["promoted"] is False
    assert summary["champion"]["version"] == 1 and summary["candidates"] == []
    client = MlflowClient(tracking_uri=registry_copy, registry_uri=registry_copy)
    assert len(client.search_model_versions(f"name='{NAME}'")) == 1
    assert not (tmp_path / "reports").exists()


def test_promote_and_rollback_commands(env, registry_copy: str) -> None:
    env(MLFLOW_TRACKING_URI=registry_copy)
    client = MlflowClient(tracking_uri=registry_copy, registry_uri=registry_copy)
    first = client.get_model_version(NAME, "1")
    client.create_model_version(NAME, first.source, first.run_id, tags=first.tags)

    result = run("promote", "--version", "2")
    assert result.exit_code == 0, result.output
    assert "v2 (was v1, now `previous`)" in result.stdout
    assert aliases(client, NAME) == {"champion": "2", "previous": "1"}

    result = run("rollback")
    assert result.exit_code == 0, result.output
    assert "champion: california-housing v1 (v2 is now `previous`)" in result.stdout
    assert aliases(client, NAME) == {"champion": "1", "previous": "2"}

    assert_one_line_error(run("promote", "--version", "9"), "has no version 9")
