"""Read endpoints, metrics, readiness, admin, CORS and the rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from service_tools import API_KEY, client_for, settings_for
from sqlalchemy.engine import Engine

from api.main import create_app
from housing.features import FEATURES, typical_row
from housing.service import log as prediction_log

CONTRACT_METRICS = (
    "housing_requests_total",
    "housing_request_latency_seconds",
    "housing_prediction_value",
    "housing_validation_failures_total",
    "housing_model_info",
    "housing_requests_in_flight",
    "housing_log_write_seconds",
    "housing_model_reloads_total",
)


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "model_version": "1", "model_error": None,
                            "database": "ok"}  # fmt: skip


def test_schema_is_the_feature_spec(client: TestClient) -> None:
    body = client.get("/schema").json()
    assert body["features"] == [f.as_dict() for f in FEATURES]
    assert body["max_batch_rows"] == 1000
    assert {"at_most_ave_rooms", "inside_california"} <= {r["name"] for r in body["rules"]}


def test_model_describes_the_champion(client: TestClient, trained_registry: str) -> None:
    body = client.get("/model").json()
    version = client_for(trained_registry).get_model_version_by_alias(
        "california-housing", "champion"
    )
    assert body["version"] == str(version.version) and body["run_id"] == version.run_id
    assert body["candidate"] == version.tags["candidate"]
    assert body["metrics"]["test_rmse"] == float(version.tags["test_rmse"])
    assert body["trained_at"] == version.tags["trained_at"] and len(body["features"]) == 8


def test_models_lists_training_runs_side_by_side(client: TestClient) -> None:
    body = client.get("/models").json()
    assert body["champion"]["version"] == "1" and body["previous"] is None
    (run,) = body["runs"]
    assert sorted(c["candidate"] for c in run["candidates"]) == [
        "gradient_boosting", "linear", "random_forest"]  # fmt: skip
    for candidate in run["candidates"]:
        assert candidate["test_rmse"] > 0 and 0 < candidate["test_r2"] < 1
        assert candidate["fit_seconds"] > 0 and candidate["test_mae"] > 0
    champions = [c for c in run["candidates"] if "champion" in c["aliases"]]
    assert [c["registered_version"] for c in champions] == ["1"]
    assert champions[0]["candidate"] == body["champion"]["candidate"]


def test_metrics_expose_the_contract_names(client: TestClient) -> None:
    client.post("/predict", json=typical_row())
    client.post("/predict", json=dict(typical_row(), MedInc=-1.0))
    text = client.get("/metrics").text
    for name in CONTRACT_METRICS:
        assert f"# TYPE {name} " in text, name
    assert 'housing_requests_total{endpoint="/predict",status="200"}' in text
    assert 'housing_requests_total{endpoint="/predict",status="422"}' in text
    assert 'housing_validation_failures_total{field="MedInc",rule="min"}' in text
    info = 'housing_model_info{candidate="gradient_boosting",name="california-housing"'
    assert f'{info},version="1"}} 1.0' in text
    assert "housing_log_write_seconds_count" in text


def test_predictions_page_filters_and_paginates(client: TestClient, engine: Engine) -> None:
    start = datetime.now(UTC)
    ids = [client.post("/predict", json=typical_row()).json()["prediction_id"] for _ in range(3)]
    bad = client.post("/predict", json={"MedInc": 1.0}).headers["X-Request-ID"]
    read = {"headers": {"X-API-Key": API_KEY}}
    page = client.get("/predictions", params={"since": start.isoformat(), "limit": 2}, **read)
    page = page.json()
    assert [item["id"] for item in page["items"]] == [bad, ids[2]]
    assert page["next_offset"] == 2
    rest = client.get("/predictions", params={"since": start.isoformat(), "offset": 2}, **read)
    rest = rest.json()
    assert [item["id"] for item in rest["items"]] == [ids[1], ids[0]]
    assert rest["next_offset"] is None
    only_ok = client.get(
        "/predictions", params={"since": start.isoformat(), "status": 200}, **read
    ).json()
    assert [item["id"] for item in only_ok["items"]] == ids[::-1]
    future = (start + timedelta(days=1)).replace(tzinfo=None).isoformat()
    assert client.get("/predictions", params={"since": future}, **read).json()["items"] == []
    assert client.get("/predictions", params={"limit": 0}, **read).status_code == 422


def test_admin_reload_needs_the_key(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    ok = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert ok.status_code == 200 and ok.json()["result"] == "unchanged"


def test_admin_refuses_everyone_without_a_configured_key(
    trained_registry: str, tmp_path: Path
) -> None:
    settings = settings_for(trained_registry, tmp_path, api_key=None)
    with TestClient(create_app(settings)) as client:
        response = client.post("/admin/reload", headers={"X-API-Key": ""})
        assert response.status_code == 403 and "HOUSING_API_KEY" in response.json()["detail"]


def test_rate_limit_and_cors(trained_registry: str, tmp_path: Path) -> None:
    settings = settings_for(
        trained_registry, tmp_path, rate_limit="3/minute", cors_origins="http://ui.example"
    )
    with TestClient(create_app(settings)) as client:
        codes = [client.post("/predict", json=typical_row()).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert client.get("/health").status_code == 200  # probes are never limited
        limited = client.post("/predict", json=typical_row())
        assert limited.status_code == 429 and "rate limit" in limited.json()["detail"]
        engine = client.app.state.runtime.engine
        rows = prediction_log.page(engine, limit=10, status=429)
        assert len(rows) == 3 and rows[0]["inputs"] == typical_row()
        preflight = client.options(
            "/predict",
            headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://ui.example"
        other = client.get("/health", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_openapi_documents_every_route_with_a_response_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = {"/predict", "/predict/batch", "/feedback", "/predictions", "/schema", "/model",
             "/models", "/health", "/ready", "/metrics", "/admin/reload",
             "/admin/versions/pending", "/admin/versions/{version}/promote"}  # fmt: skip
    assert paths <= set(spec["paths"])
    for path in paths:
        for operation in spec["paths"][path].values():
            assert "200" in operation["responses"], (path, operation)
    house = spec["components"]["schemas"]["House"]
    assert house["additionalProperties"] is False and len(house["properties"]) == 8
