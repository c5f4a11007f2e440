"""`housing serve` fails with one clear line on bad settings, never a traceback."""

from __future__ import annotations

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
