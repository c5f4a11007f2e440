"""`housing serve` fails with one clear line on bad settings, never a traceback; the in-process
benchmark script runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from housing.cli import app


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HOUSING_RATE_LIMIT": "lots"}, "invalid service settings: HOUSING_RATE_LIMIT"),
        ({"HOUSING_MAX_BODY_BYTES": "-1"}, "invalid service settings: HOUSING_MAX_BODY_BYTES"),
        (
            {"HOUSING_DATABASE_URL": "sqlite:////proc/no/such/dir/x.db"},
            "cannot open the prediction log",
        ),
        ({"HOUSING_DATABASE_URL": "nosuchdb://x"}, "cannot open the prediction log"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(env: dict, message: str, tmp_path: Path) -> None:
    env.setdefault("HOUSING_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    result = CliRunner().invoke(app, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_in_process_benchmark_measures_both_apps(trained_registry: str, tmp_path: Path) -> None:
    """`make bench-inprocess` runs: one JSON line per app, every request answered 200."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_inprocess.py"
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_registry}
    result = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        [sys.executable, str(script), "ceiling", "service", "--requests", "320"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["app"] for line in lines] == ["ceiling", "service"]
    assert all(line["requests"] == 320 and line["cpu_us_per_request"] > 0 for line in lines)
