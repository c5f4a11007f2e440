"""MLflow plumbing: artifact locations, scoped environment knobs, the scoped global URI."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from housing.tracking import artifact_location, global_tracking_uri, mlflow_env


def test_sqlite_artifacts_sit_beside_the_database(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    expected = (tmp_path / "mlartifacts").as_uri()
    assert artifact_location("sqlite:///mlflow.db") == expected
    assert artifact_location(f"sqlite:///{tmp_path / 'mlflow.db'}") == expected
    assert artifact_location("http://127.0.0.1:5000") is None


def test_mlflow_env_sets_only_unset_knobs_and_restores(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with mlflow_env(MLFLOW_HTTP_REQUEST_TIMEOUT="5", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"):
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"  # the user's choice wins
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


@pytest.mark.parametrize("before", [None, "sqlite:///before.db"])
def test_global_tracking_uri_is_restored(before: str | None, monkeypatch) -> None:
    if before is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", before)
    outside = mlflow.get_tracking_uri()
    with global_tracking_uri("sqlite:///inside.db"):
        assert mlflow.get_tracking_uri() == "sqlite:///inside.db"
        assert mlflow.get_registry_uri() == "sqlite:///inside.db"
    assert os.environ.get("MLFLOW_TRACKING_URI") == before
    assert mlflow.get_tracking_uri() == outside
