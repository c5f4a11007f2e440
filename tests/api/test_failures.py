"""Server-side failures: a 500 says nothing about the internals and is still logged."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from service_tools import settings_for
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from api.main import create_app
from housing.features import typical_row
from housing.service import log as prediction_log
from housing.service.model import LoadedModel


def test_a_failing_model_gives_a_logged_500_without_internals(
    trained_registry: str, tmp_path: Path
) -> None:
    app = create_app(settings_for(trained_registry, tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        runtime = client.app.state.runtime
        unfitted = Pipeline([("model", LinearRegression())])  # predict raises NotFittedError
        runtime.holder.current = LoadedModel("california-housing", "9", "champion", unfitted)
        response = client.post("/predict", json=typical_row())
        assert response.status_code == 500
        assert response.json() == {"detail": "the model failed on this input"}
        assert "NotFitted" not in response.text and "Traceback" not in response.text
        (row,) = prediction_log.page(runtime.engine, limit=5, status=500)
        assert row["inputs"] == typical_row() and row["error"].startswith("prediction failed")


def test_an_unexpected_error_gives_a_logged_500_without_internals(
    trained_registry: str, tmp_path: Path
) -> None:
    app = create_app(settings_for(trained_registry, tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        runtime = client.app.state.runtime
        runtime.batcher.predict = None  # a bug: calling it raises TypeError inside the route
        response = client.post("/predict", json=typical_row())
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error (logged on the server)"}
        row = prediction_log.page(runtime.engine, limit=5, status=500)[0]
        assert row["id"] == response.headers["X-Request-ID"] and row["error"] == "TypeError"
