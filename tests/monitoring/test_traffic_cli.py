"""`housing simulate`, `housing evaluate` and `housing drift` refuse bad input clearly, write
nothing half-way, and never show a traceback (the happy paths run in the integration test)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from housing.cli import app
from housing.monitoring.evaluate import append_history


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, prepared_data_dir: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("HOUSING_DATA_DIR", str(prepared_data_dir))
    monkeypatch.setenv("HOUSING_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rate", "0"], "--rate must be in (0, 500] requests per second, got 0"),
        (["--duration", "7200"], "--duration must be in (0, 3600] seconds, got 7200"),
        (["--batch", "5000"], "--batch must be in [1, 1000], got 5000"),
        (["--drift", "tsunami"], "unknown drift 'tsunami': choose one of none, income"),
        (["--url", "ftp://127.0.0.1"], "--url must start with http:// or https://"),
        (["--feedback", "2"], "--feedback must be in [0, 1], got 2"),
    ],
)
def test_simulate_refuses_bad_knobs(env: Path, args: list[str], message: str) -> None:
    result = run("simulate", "--url", closed_port_url(), *args)
    assert result.exit_code == 1 and message in result.stderr


def test_simulate_and_evaluate_say_when_nothing_answers(env: Path) -> None:
    url = closed_port_url()
    for command in ("simulate", "evaluate"):
        result = (
            run(command, "--url", url, "--duration", "1")
            if command == "simulate"
            else run(command, "--url", url, "--limit", "3")
        )
        assert result.exit_code == 1
        assert f"no API answers at {url}" in result.stderr
    assert not (env / "reports").exists(), "nothing is written when nothing was evaluated"


def test_evaluate_names_the_bad_file_column_and_line(env: Path, held_out: pd.DataFrame) -> None:
    bad = held_out.head(5).copy()
    bad.loc[bad.index[2], "MedInc"] = -4.0
    path = env / "labelled.csv"
    bad.to_csv(path, index=False)
    result = run("evaluate", "--url", closed_port_url(), "--data", str(path))
    assert result.exit_code == 2
    assert str(path) in result.stderr and "MedInc" in result.stderr and "line 4" in result.stderr
    missing = run("evaluate", "--url", closed_port_url(), "--data", str(env / "nope.csv"))
    assert missing.exit_code == 1 and "nope.csv: cannot read it as CSV" in missing.stderr


def test_drift_without_prepared_data_says_what_to_run(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOUSING_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HOUSING_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    from housing.monitoring.settings import get_monitoring_settings
    from housing.service.settings import get_service_settings

    get_monitoring_settings.cache_clear()
    get_service_settings.cache_clear()
    try:
        result = run("drift", "--json")
    finally:
        get_monitoring_settings.cache_clear()
        get_service_settings.cache_clear()
    assert result.exit_code == 1 and "run `housing data`" in result.stderr


def test_history_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "evaluations.jsonl"
    append_history(path, {"run": 1})
    path.write_text(path.read_text().rstrip("\n"))  # a file someone edited by hand
    append_history(path, {"run": 2})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"run": 1}, {"run": 2}]
    assert [p.name for p in path.parent.iterdir()] == ["evaluations.jsonl"]  # no temp files left
