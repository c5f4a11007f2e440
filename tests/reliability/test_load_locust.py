"""Load: 50 Locust users, mixed predict/batch/feedback/health, against a real uvicorn.

The suite runs a short version (``LOAD_SECONDS``) to keep `make test` fast; the 2-minute run
whose figures go in the README is `make reliability` (scripts/reliability.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_harness import LOGGED, log_rows, run_locust, running_service

LOAD_SECONDS = 10
USERS = 50


@pytest.mark.integration
@pytest.mark.slow
def test_fifty_users_get_no_errors_and_every_request_is_one_log_row(
    env_for: Callable[..., dict[str, str]], data_dir: Path, tmp_path: Path
) -> None:
    env = env_for()
    with running_service(env, tmp_path) as service:
        result = run_locust(
            service.url, data_dir, tmp_path / "locust", users=USERS, seconds=LOAD_SECONDS
        )
        rows = log_rows(service.database)
    assert result.errors == 0, result.output[-3000:]
    assert result.exit_code == 0, result.output[-3000:]
    assert set(result.requests) == {*LOGGED, "/health"}, result.requests
    assert min(result.requests.values()) > 0
    by_endpoint = {endpoint: 0 for endpoint in LOGGED}
    for row in rows:
        by_endpoint[row["endpoint"]] += 1
    assert by_endpoint == {e: result.requests[e] for e in LOGGED}
    assert {row["status"] for row in rows} == {200}
    # Every id a client was given is a committed row (batch and predict ids are request ids).
    assert set(result.acknowledged) == {row["id"] for row in rows}
