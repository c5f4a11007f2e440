"""The rate limit counts houses: a batch costs its row count, not one request."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from service_tools import settings_for

from api.main import create_app
from housing.features import typical_row
from housing.service import log as prediction_log


def test_a_batch_costs_its_row_count(trained_registry: str, tmp_path: Path) -> None:
    """With one request counted per batch, 100 requests a minute let a client predict 100,000
    houses a minute; the row limit holds it to what it says."""
    settings = settings_for(
        trained_registry, tmp_path, rate_limit="1000/minute", row_rate_limit="30/minute"
    )
    with TestClient(create_app(settings)) as client:
        batch = {"houses": [typical_row()] * 20}
        assert client.post("/predict/batch", json=batch).status_code == 200  # 20 houses
        over = client.post("/predict/batch", json=batch)  # 40 > 30
        assert over.status_code == 429, over.text
        assert "houses" in over.json()["detail"]
        assert int(over.headers["Retry-After"]) >= 1
        assert client.post("/predict", json=typical_row()).status_code == 429  # still over
        rows = prediction_log.page(client.app.state.runtime.engine, limit=10, status=429)
        assert {row["endpoint"] for row in rows} == {"/predict/batch", "/predict"}
        assert client.get("/schema").status_code == 200  # other routes count requests only


def test_single_predictions_count_one_house_each(trained_registry: str, tmp_path: Path) -> None:
    settings = settings_for(
        trained_registry, tmp_path, rate_limit="1000/minute", row_rate_limit="3/minute"
    )
    with TestClient(create_app(settings)) as client:
        codes = [client.post("/predict", json=typical_row()).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]


def test_the_row_limit_is_off_with_the_request_limit(trained_registry: str, tmp_path: Path) -> None:
    settings = settings_for(trained_registry, tmp_path, rate_limit="", row_rate_limit="1/minute")
    with TestClient(create_app(settings)) as client:
        batch = {"houses": [typical_row()] * 5}
        assert [client.post("/predict/batch", json=batch).status_code for _ in range(2)] == [
            200
        ] * 2
