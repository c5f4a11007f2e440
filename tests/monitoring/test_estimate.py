"""The label-free MAE estimate and live interval coverage, in the real API on a real log,
checked against values computed by hand from the log's rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from api.main import create_app
from housing import intervals
from housing.features import FEATURE_NAMES, TARGET
from housing.monitoring.settings import MonitoringSettings
from housing.service.settings import ServiceSettings

WINDOW, LABELLED = 400, 200


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("estimate") / "predictions.db"


@pytest.fixture(scope="module")
def client(trained_registry: str, prepared_data_dir: Path, log_file: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(
        database_url=f"sqlite:///{log_file}", MLFLOW_TRACKING_URI=trained_registry, rate_limit=""
    )
    app = create_app(settings)
    app.state.monitoring_settings = MonitoringSettings(
        data_dir=prepared_data_dir,
        drift_interval_seconds=3600,
        drift_min_rows=WINDOW,
        drift_window_rows=WINDOW,
        performance_window=500,
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def served(client: TestClient, held_out: pd.DataFrame) -> pd.DataFrame:
    """600 test houses served (one batch of 500, 100 one by one), 200 of them labelled."""
    frame = held_out.iloc[:600].reset_index(drop=True)
    records = frame.loc[:, list(FEATURE_NAMES)].to_dict("records")
    batch = client.post("/predict/batch", json={"houses": records[:500]}).json()
    ids = [item["prediction_id"] for item in batch["results"]]
    tokens = [batch["feedback_token"]] * len(ids)  # one token for all of a batch's rows
    for house in records[500:]:
        answered = client.post("/predict", json=house).json()
        ids.append(answered["prediction_id"])
        tokens.append(answered["feedback_token"])
    for index in range(0, 600, 600 // LABELLED):  # batch rows and single ones
        actual = float(frame.loc[index, TARGET.name])
        body = {"prediction_id": ids[index], "actual": actual, "feedback_token": tokens[index]}
        response = client.post("/feedback", json=body)
        assert response.status_code == 200, response.text
    return frame


def champion_intervals(uri: str) -> intervals.Intervals:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("california-housing", "champion")
    loaded = intervals.load(version.run_id, uri)
    assert loaded is not None
    return loaded


def by_hand(log_file: Path) -> tuple[list[dict], list[tuple[float, float, float]]]:
    """From the log's rows with plain SQL: the served houses newest first, and each labelled
    prediction's (actual, low, high)."""
    connection = sqlite3.connect(log_file)
    try:
        rows = connection.execute(
            "SELECT id, endpoint, inputs, interval_low, interval_high, intervals"
            " FROM prediction_log WHERE endpoint IN ('/predict', '/predict/batch') AND status = 200"
            " ORDER BY created_at DESC, id DESC"
        ).fetchall()
        labels = connection.execute(
            "SELECT feedback_for, actual FROM prediction_log"
            " WHERE endpoint = '/feedback' AND status = 200"
        ).fetchall()
    finally:
        connection.close()
    houses, bounds = [], {}
    for request_id, endpoint, inputs, low, high, pairs in rows:
        if endpoint == "/predict":
            houses.append(json.loads(inputs))
            bounds[request_id] = (low, high)
        else:
            houses.extend(json.loads(inputs))
            for index, pair in enumerate(json.loads(pairs)):
                bounds[f"{request_id}-{index}"] = tuple(pair)
    return houses, [(actual, *bounds[prediction]) for prediction, actual in labels]


def test_estimate_and_coverage_match_the_log_by_hand(
    client: TestClient, served: pd.DataFrame, log_file: Path, trained_registry: str
) -> None:
    body = client.get("/performance").json()
    houses, labelled = by_hand(log_file)
    window = pd.DataFrame(houses[:WINDOW], columns=list(FEATURE_NAMES)).to_numpy(float)
    model = champion_intervals(trained_registry)
    sigma = np.maximum(model.sigma_model.predict(window), model.floor)
    inside = [low <= actual <= high for actual, low, high in labelled]
    assert body["estimate_rows"] == WINDOW and body["estimate_window"] == WINDOW
    assert body["estimated_mae"] == pytest.approx(float(sigma.mean()), rel=1e-9)
    assert body["coverage_count"] == len(labelled) == LABELLED
    assert body["interval_coverage"] == pytest.approx(float(np.mean(inside)), abs=1e-12)
    assert body["interval_level"] == 0.9
    assert body["count"] == LABELLED  # realized MAE beside it, from the same feedback
    gauges = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in client.get("/metrics").text.splitlines()
        if line and not line.startswith("#")
    }
    assert gauges["housing_estimated_mae"] == pytest.approx(body["estimated_mae"])
    assert gauges["housing_live_interval_coverage"] == pytest.approx(body["interval_coverage"])
    assert gauges["housing_live_interval_labelled"] == LABELLED
    assert gauges["housing_model_test_mae"] == pytest.approx(body["test_mae"])


def test_the_estimate_is_near_the_realized_error(client: TestClient, served: pd.DataFrame) -> None:
    """On unshifted test houses the estimate is an MAE, not just any number: within 25% of
    the realized MAE of 200 labels (its sampling error alone is ~7%)."""
    body = client.get("/performance").json()
    assert body["estimated_mae"] == pytest.approx(body["mae"], rel=0.25)


def test_estimate_calibrate_compares_windows_with_the_realized_error(
    trained_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`housing estimate-calibrate` on the trained store: one JSON cell per shift and size;
    the unshifted cells' figures are recomputed here from the same windows by hand."""
    from typer.testing import CliRunner

    from housing.cli import app as cli
    from housing.monitoring.shifts import Shift

    root = Path(trained_registry.removeprefix("sqlite:///")).parent
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_registry)
    monkeypatch.setenv("HOUSING_DATA_DIR", str(root / "data"))
    args = ["estimate-calibrate", "--trials", "20", "--rows", "1000", "--json", "--seed", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    cells = [json.loads(line) for line in result.output.splitlines()]
    assert [c["shift"] for c in cells] == [s.value for s in Shift]
    plain = cells[0]
    # The windows by hand: the same generator, the champion's errors and σ on the test split.
    from housing.data import load_split
    from housing.registry import load_model

    test = load_split(root / "data")[1]
    model = champion_intervals(trained_registry)
    features = test.loc[:, list(FEATURE_NAMES)]
    pipeline = load_model("california-housing", "champion", tracking_uri=trained_registry)
    errors = np.abs(test[TARGET.name].to_numpy() - pipeline.predict(features))
    sigma = np.maximum(model.sigma_model.predict(features.to_numpy(float)), model.floor)
    rng = np.random.default_rng(3)
    windows = [rng.choice(len(test), 1000, replace=False) for _ in range(20)]
    estimated = np.array([sigma[w].mean() for w in windows])
    realized = np.array([errors[w].mean() for w in windows])
    assert plain["estimated_mae"] == pytest.approx(estimated.mean(), rel=1e-9)
    assert plain["realized_mae"] == pytest.approx(realized.mean(), rel=1e-9)
    within = np.mean(np.abs(estimated / realized - 1) <= 0.10)
    assert plain["within_tolerance"] == pytest.approx(within)
    assert within >= 0.8  # the quick test model; the README reports the real champion


def test_estimate_calibrate_without_a_champion_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared_data_dir: Path
) -> None:
    from typer.testing import CliRunner

    from housing.cli import app as cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("HOUSING_DATA_DIR", str(prepared_data_dir))
    result = CliRunner().invoke(cli, ["estimate-calibrate", "--trials", "2"])
    assert result.exit_code == 1
    assert "no champion" in result.output and "housing train" in result.output
