"""Hot reload in process: a promoted version is picked up; a broken one is refused."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from service_tools import API_KEY, register_broken, register_candidate, settings_for

from api.main import create_app
from housing.features import FEATURE_NAMES, typical_row
from housing.registry import load_model

ADMIN = {"X-API-Key": API_KEY}


def metric(client: TestClient, name: str) -> float:
    registry = client.app.state.metrics.registry
    return registry.get_sample_value(name.split("{")[0], _labels(name)) or 0.0


def _labels(name: str) -> dict[str, str]:
    if "{" not in name:
        return {}
    body = name.split("{", 1)[1].rstrip("}")
    return dict(part.split("=") for part in body.replace('"', "").split(","))


def test_admin_reload_swaps_in_a_promoted_version(registry_copy: str, tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as client:
        assert client.post("/predict", json=typical_row()).json()["model_version"] == "1"
        version = register_candidate(registry_copy, "linear")
        assert client.post("/predict", json=typical_row()).json()["model_version"] == "1"
        reload = client.post("/admin/reload", headers=ADMIN)
        assert reload.status_code == 200
        assert reload.json() == {"result": "loaded", "version": version,
                                 "detail": f"california-housing v{version} is serving"}  # fmt: skip
        body = client.post("/predict", json=typical_row()).json()
        linear = load_model("california-housing", version, tracking_uri=registry_copy)
        frame = pd.DataFrame([typical_row()], columns=list(FEATURE_NAMES))
        assert body["model_version"] == version
        assert body["prediction"] == pytest.approx(float(linear.predict(frame)[0]), rel=1e-12)
        assert client.get("/model").json()["candidate"] == "linear"
        assert metric(client, 'housing_model_reloads_total{result="success"}') == 2
        text = client.get("/metrics").text
        assert f'version="{version}"' in text and 'version="1"' not in text


def test_a_version_that_cannot_load_is_refused_and_the_old_one_serves(
    registry_copy: str, tmp_path: Path
) -> None:
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as client:
        broken = register_broken(registry_copy, tmp_path / "empty")
        reload = client.post("/admin/reload", headers=ADMIN)
        assert reload.status_code == 409
        assert reload.json()["result"] == "failed" and reload.json()["version"] == "1"
        assert f"v{broken} failed to load" in reload.json()["detail"]
        assert metric(client, 'housing_model_reloads_total{result="failure"}') == 1
        assert client.post("/predict", json=typical_row()).json()["model_version"] == "1"
        ready = client.get("/ready")
        assert ready.status_code == 200 and f"v{broken}" in ready.json()["model_error"]
        # polling does not retry the refused version; a new promotion is picked up
        assert client.app.state.runtime.holder.reload().result == "failed"
        assert metric(client, 'housing_model_reloads_total{result="failure"}') == 1


def test_polling_notices_a_moved_alias(registry_copy: str, tmp_path: Path) -> None:
    settings = settings_for(registry_copy, tmp_path, reload_interval_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        version = register_candidate(registry_copy, "random_forest")
        deadline = time.monotonic() + 30
        while client.get("/model").json()["version"] != version:
            assert time.monotonic() < deadline, "the new champion was not picked up"
            time.sleep(0.1)
        assert client.post("/predict", json=typical_row()).json()["model_version"] == version


def test_the_service_starts_without_a_champion_and_is_not_ready(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty-mlflow.db'}"
    with TestClient(create_app(settings_for(empty, tmp_path))) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["model_version"] is None
        assert "housing train" in ready.json()["model_error"]
        response = client.post("/predict", json=typical_row())
        assert response.status_code == 503
        assert client.get("/model").status_code == 503
