"""Prediction intervals through the API, on the real test split the champion was scored on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy.engine import Engine

from housing import data
from housing.features import FEATURE_NAMES, TARGET, typical_row
from housing.service.log import prediction_log


@pytest.fixture(scope="module")
def test_split(trained_registry: str) -> pd.DataFrame:
    """The test split `trained_registry` was trained beside (its ``data/`` folder)."""
    root = Path(trained_registry.removeprefix("sqlite:///")).parent
    return data.load_split(root / "data")[1]


@pytest.fixture(scope="module")
def served(client: TestClient, test_split: pd.DataFrame) -> pd.DataFrame:
    """Every test house predicted through /predict/batch: prediction, low, high."""
    rows = []
    for start in range(0, len(test_split), 1000):
        houses = test_split.iloc[start : start + 1000].loc[:, list(FEATURE_NAMES)]
        response = client.post("/predict/batch", json={"houses": houses.to_dict("records")})
        assert response.status_code == 200, response.text
        for item in response.json()["results"]:
            interval = item["interval"]
            rows.append((item["prediction"], interval["low"], interval["high"], interval["level"]))
    return pd.DataFrame(rows, columns=["prediction", "low", "high", "level"])


def champion_metrics(uri: str) -> dict[str, float]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("california-housing", "champion")
    return client.get_run(version.run_id).data.metrics


def test_the_served_intervals_cover_the_test_split_as_training_measured(
    served: pd.DataFrame, test_split: pd.DataFrame, trained_registry: str
) -> None:
    actual = test_split[TARGET.name].to_numpy()
    inside = (served["low"] <= actual) & (actual <= served["high"])
    width = served["high"] - served["low"]
    logged = champion_metrics(trained_registry)
    assert (served["level"] == 0.9).all()
    # A 90% conformal interval on 4,128 test houses: within ~3 standard errors of 0.90.
    assert 0.88 <= inside.mean() <= 0.92
    assert inside.mean() == pytest.approx(logged["interval_coverage"], abs=1e-3)
    assert width.mean() == pytest.approx(logged["interval_mean_width"], rel=1e-6)
    # Adaptive: not one width for all, and narrower on average than the constant interval.
    assert width.std() > 0.05
    assert width.mean() < logged["interval_const_mean_width"]


def test_the_log_row_stores_the_interval(client: TestClient, engine: Engine) -> None:
    body = client.post("/predict", json=typical_row()).json()
    batch = client.post("/predict/batch", json={"houses": [typical_row(), {"MedInc": -1}]}).json()
    t = prediction_log
    with engine.connect() as connection:
        one = connection.execute(sa.select(t).where(t.c.id == body["prediction_id"])).one()
        many = connection.execute(sa.select(t).where(t.c.id == batch["request_id"])).one()
    interval = body["interval"]
    assert (one.interval_level, one.interval_low, one.interval_high) == (
        0.9, interval["low"], interval["high"]
    )  # fmt: skip
    first = batch["results"][0]["interval"]
    assert many.interval_level == 0.9 and many.interval_low is None
    assert many.intervals == [[first["low"], first["high"]], None]
    assert batch["results"][1]["interval"] is None


def test_width_histogram_counts_each_served_interval_in_dollars(client: TestClient) -> None:
    registry = client.app.state.metrics.registry
    before = registry.get_sample_value("housing_interval_width_count") or 0.0
    total = registry.get_sample_value("housing_interval_width_sum") or 0.0
    body = client.post("/predict", json=typical_row()).json()
    interval = body["interval"]
    assert registry.get_sample_value("housing_interval_width_count") == before + 1
    width = interval["high_dollars"] - interval["low_dollars"]
    assert registry.get_sample_value("housing_interval_width_sum") == pytest.approx(total + width)
    assert np.isfinite(width) and width > 0
