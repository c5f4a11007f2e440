"""The monitoring inside the real API (real model, real SQLite log, real Evidently process):
GET /drift, /drift/history, /drift/report, /performance, the gauges, and `housing drift`."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from housing.cli import app as cli
from housing.monitoring import shifts
from housing.monitoring.settings import MonitoringSettings, get_monitoring_settings
from housing.monitoring.traffic import houses
from housing.service.settings import ServiceSettings, get_service_settings

pytestmark = [pytest.mark.slow]
MIN_ROWS, WINDOW = 200, 300

READ_KEY = "monitoring-read-key"
READ = {"X-API-Key": READ_KEY}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('monitoring-api') / 'predictions.db'}"


@pytest.fixture(scope="module")
def client(
    trained_registry: str, prepared_data_dir: Path, database_url: str
) -> Iterator[TestClient]:
    settings = ServiceSettings(
        database_url=database_url,
        MLFLOW_TRACKING_URI=trained_registry,
        rate_limit="",
        read_keys=READ_KEY,
    )
    app = create_app(settings)
    app.state.monitoring_settings = MonitoringSettings(
        data_dir=prepared_data_dir,
        drift_interval_seconds=0.5,
        drift_min_rows=MIN_ROWS,
        drift_window_rows=WINDOW,
    )
    with TestClient(app) as test_client:
        yield test_client


def metric(client: TestClient, name: str) -> float:
    """A sample's value from GET /metrics (``name`` includes labels, exactly as exposed)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


def finite_metric(client: TestClient, name: str) -> float:
    """A sample that must hold a real number by now (gauges are NaN until their first value)."""
    value = metric(client, name)
    assert math.isfinite(value), f"{name} is {value}"
    return value


def predict_batch(client: TestClient, frame: pd.DataFrame) -> list[dict]:
    """The batch's results, each with the batch's ``feedback_token``."""
    response = client.post("/predict/batch", json={"houses": houses(frame)})
    assert response.status_code == 200, response.text
    body = response.json()
    return [dict(item, feedback_token=body["feedback_token"]) for item in body["results"]]


def wait_for_run(client: TestClient, after: int | None, timeout: float = 90.0) -> dict:
    """Poll GET /drift until a run newer than ``after`` is stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/drift").json()
        if body["run_id"] is not None and body["run_id"] != after:
            return body
        time.sleep(0.3)
    raise AssertionError(f"no new drift run within {timeout} s: {body}")


def test_before_enough_traffic_nothing_is_claimed(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while (body := client.get("/drift").json())["checked_at"] is None:  # first tick pending
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["status"] == "waiting" and body["run_id"] is None and body["share"] is None
    assert (body["min_rows"], body["window_rows"]) == (MIN_ROWS, WINDOW)
    report = client.get("/drift/report", headers=READ)
    assert report.status_code == 404 and f"drift needs {MIN_ROWS}" in report.json()["detail"]
    performance = client.get("/performance").json()
    assert performance["count"] == 0 and performance["rmse"] is None
    assert performance["test_rmse"] > 0 and performance["model_version"]
    assert math.isnan(metric(client, "housing_drift_share"))
    assert math.isnan(metric(client, "housing_live_rmse"))
    assert math.isnan(metric(client, "housing_live_mae"))
    assert finite_metric(client, "housing_model_test_rmse") == performance["test_rmse"]


def test_held_out_traffic_no_drift_and_live_accuracy(
    client: TestClient, held_out: pd.DataFrame
) -> None:
    rows = held_out.sample(WINDOW, random_state=11)
    results = predict_batch(client, rows)
    truth = rows["MedHouseVal"].to_numpy()
    predicted = np.array([r["prediction"] for r in results])
    for result, actual in list(zip(results, truth, strict=True))[:100]:
        label = {"prediction_id": result["prediction_id"], "actual": actual}
        answer = client.post("/feedback", json=label | {"feedback_token": result["feedback_token"]})
        assert answer.status_code == 200, answer.text

    body = wait_for_run(client, after=None)
    assert body["status"] == "ok" and body["current_rows"] == WINDOW
    assert body["detected"] is False and body["share"] == 0.0
    assert [f["feature"] for f in body["features"]][:2] == ["MedInc", "HouseAge"]

    performance = client.get("/performance").json()
    expected_rmse = float(np.sqrt(np.mean((predicted[:100] - truth[:100]) ** 2)))
    expected_mae = float(np.mean(np.abs(predicted[:100] - truth[:100])))
    assert performance["count"] == 100
    assert performance["rmse"] == pytest.approx(expected_rmse, rel=1e-9)
    assert performance["mae"] == pytest.approx(expected_mae, rel=1e-9)
    assert performance["rmse_ratio"] == pytest.approx(expected_rmse / performance["test_rmse"])
    assert finite_metric(client, "housing_live_rmse") == pytest.approx(expected_rmse, rel=1e-9)
    assert finite_metric(client, "housing_live_mae") == pytest.approx(performance["mae"], rel=1e-12)
    assert finite_metric(client, "housing_model_test_rmse") == performance["test_rmse"]
    assert finite_metric(client, "housing_drift_share") == body["share"]
    assert metric(client, "housing_live_labelled_predictions") == 100
    assert metric(client, "housing_drift_detected") == 0
    assert metric(client, 'housing_feature_drifted{feature="MedInc"}') == 0


def test_shifted_traffic_is_flagged_stored_and_reported(
    client: TestClient, held_out: pd.DataFrame
) -> None:
    before = client.get("/drift").json()["run_id"]
    richer = shifts.apply_shift(held_out.sample(WINDOW, random_state=12), "income")
    predict_batch(client, richer)

    body = wait_for_run(client, after=before)
    assert body["detected"] is True and "MedInc" in body["drifted_features"]
    assert body["share"] >= body["drift_share"]
    assert finite_metric(client, "housing_drift_share") == pytest.approx(body["share"], rel=1e-12)
    assert metric(client, "housing_drift_detected") == 1
    assert metric(client, 'housing_feature_drifted{feature="MedInc"}') == 1
    score = metric(client, 'housing_feature_drift_score{feature="MedInc"}')
    assert score == pytest.approx(body["features"][0]["score"]) and score < 1e-6

    history = client.get("/drift/history", params={"limit": 10}, headers=READ).json()
    assert [h["run_id"] for h in history][:2] == [body["run_id"], before]
    assert [h["detected"] for h in history][:2] == [True, False]

    report = client.get("/drift/report", headers=READ)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.headers["x-drift-run-id"] == str(body["run_id"])
    assert "MedInc" in report.text


def test_drift_command_reads_the_same_log(
    client: TestClient, prepared_data_dir: Path, database_url: str, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOUSING_DATABASE_URL", database_url)
    monkeypatch.setenv("HOUSING_DATA_DIR", str(prepared_data_dir))
    monkeypatch.setenv("HOUSING_DRIFT_MIN_ROWS", str(MIN_ROWS))
    monkeypatch.setenv("HOUSING_DRIFT_WINDOW_ROWS", str(WINDOW))
    get_monitoring_settings.cache_clear()
    get_service_settings.cache_clear()
    try:
        html = tmp_path / "drift.html"
        result = CliRunner().invoke(cli, ["drift", "--json", "--html", str(html)])
        assert result.exit_code == 0, result.output
        (line,) = result.stdout.splitlines()
        summary = json.loads(line)
        api = client.get("/drift").json()
        assert summary["detected"] is True and summary["share"] == api["share"]
        assert {f["feature"]: f["score"] for f in summary["features"]} == pytest.approx(
            {f["feature"]: f["score"] for f in api["features"]}
        )
        assert "MedInc" in html.read_text()

        refused = CliRunner().invoke(cli, ["drift", "--min-rows", "100000"])
        assert refused.exit_code == 1
        assert "drift needs 100000" in refused.stderr and "Traceback" not in refused.output
    finally:
        get_monitoring_settings.cache_clear()
        get_service_settings.cache_clear()
