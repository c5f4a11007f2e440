"""Hot reload in process: a promoted version is picked up; a broken one is refused."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from service_tools import (
    API_KEY,
    MODEL,
    client_for,
    register_broken,
    register_candidate,
    settings_for,
)

from api.main import create_app
from housing import registry
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


def expected_interval(uri: str, version: str) -> tuple[float, float]:
    """The typical house's interval computed apart from the service, from the version's own
    model and its run's ``intervals/`` artifact (scikit-learn, not treelite)."""
    from housing import intervals

    run_id = client_for(uri).get_model_version(MODEL, version).run_id
    loaded = intervals.load(run_id, uri)
    assert loaded is not None
    frame = pd.DataFrame([typical_row()], columns=list(FEATURE_NAMES))
    prediction = load_model(MODEL, version, tracking_uri=uri).predict(frame)
    low, high = loaded.bounds(prediction, frame.to_numpy(dtype=float))
    return float(low[0]), float(high[0])


def served_interval(client: TestClient) -> tuple[str, tuple[float, float]]:
    body = client.post("/predict", json=typical_row()).json()
    return body["model_version"], (body["interval"]["low"], body["interval"]["high"])


def test_intervals_travel_with_hot_reload_and_rollback(registry_copy: str, tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as client:
        first = served_interval(client)
        assert first[1] == pytest.approx(expected_interval(registry_copy, "1"), rel=1e-9)
        version = register_candidate(registry_copy, "linear")
        assert client.post("/admin/reload", headers=ADMIN).json()["result"] == "loaded"
        linear = served_interval(client)
        assert linear[0] == version
        assert linear[1] == pytest.approx(expected_interval(registry_copy, version), rel=1e-9)
        assert linear[1] != pytest.approx(first[1], rel=1e-3)
        registry.rollback(client_for(registry_copy), MODEL)
        assert client.post("/admin/reload", headers=ADMIN).json()["result"] == "loaded"
        assert served_interval(client) == first


def test_a_version_without_intervals_serves_without_them(
    registry_copy: str, tmp_path: Path
) -> None:
    """An old champion (its run has no ``intervals/`` artifact) still serves: interval null."""
    client = client_for(registry_copy)
    experiment = client.get_experiment_by_name(MODEL).experiment_id
    run = client.create_run(experiment)
    source = client.get_model_version(MODEL, "1")
    models = client.search_logged_models(experiment_ids=[experiment])
    model = next(m for m in models if m.source_run_id == source.run_id)
    old = registry.register(
        client, MODEL, f"models:/{model.model_id}", run.info.run_id, {"candidate": "old"}
    )
    registry.promote(client, MODEL, int(old.version))
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as api:
        body = api.post("/predict", json=typical_row()).json()
        assert body["model_version"] == str(old.version) and body["interval"] is None
        batch = api.post("/predict/batch", json={"houses": [typical_row()]}).json()
        assert batch["results"][0]["interval"] is None and batch["results"][0]["prediction"]
        rows = prediction_log_rows(tmp_path)
        assert [(r["interval_level"], r["interval_low"], r["intervals"]) for r in rows] == [
            (None, None, None)
        ] * 2


def prediction_log_rows(folder: Path) -> list[dict]:
    """The /predict and /predict/batch rows of the log in ``folder`` (plain SQL)."""
    import sqlite3

    connection = sqlite3.connect(folder / "predictions.db")
    connection.row_factory = sqlite3.Row
    try:
        query = "SELECT * FROM prediction_log WHERE endpoint LIKE '/predict%' ORDER BY created_at"
        return [dict(row) for row in connection.execute(query)]
    finally:
        connection.close()
