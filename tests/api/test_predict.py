"""POST /predict and /predict/batch on the real champion, with a real SQLite log."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from housing.features import FEATURE_NAMES, TARGET_DOLLARS, typical_row
from housing.service import log as prediction_log
from housing.service.schemas import MAX_BATCH_ROWS


def logged(engine: Engine, request_id: str) -> dict:
    rows = [r for r in prediction_log.page(engine, limit=500) if r["id"] == request_id]
    assert len(rows) == 1, f"request {request_id} not logged exactly once"
    return rows[0]


def expected(reference_model, *houses: dict) -> list[float]:
    frame = pd.DataFrame([{n: h[n] for n in FEATURE_NAMES} for h in houses])
    return [float(v) for v in reference_model.predict(frame)]


def test_a_house_gets_the_champions_prediction_and_a_logged_row(
    client: TestClient, engine: Engine, reference_model
) -> None:
    house = dict(typical_row(), MedInc=8.1, Latitude=37.77, Longitude=-122.42)
    response = client.post("/predict", json=house)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] == pytest.approx(expected(reference_model, house)[0], rel=1e-12)
    assert body["prediction_dollars"] == pytest.approx(body["prediction"] * TARGET_DOLLARS)
    assert body["model_name"] == "california-housing" and body["model_version"] == "1"
    assert response.headers["X-Request-ID"] == body["prediction_id"]
    row = logged(engine, body["prediction_id"])
    assert row["endpoint"] == "/predict" and row["status"] == 200
    assert row["inputs"] == house and row["prediction"] == body["prediction"]
    assert row["model_version"] == "1" and row["latency_ms"] > 0 and row["error"] is None


def test_a_broken_rule_is_named_and_the_rejection_logged(client: TestClient, engine: Engine):
    house = dict(typical_row(), AveRooms=2.0, AveBedrms=3.0, Colour="red")
    response = client.post("/predict", json=house)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {"field": "AveBedrms", "rule": "at_most_ave_rooms",
            "message": "AveBedrms (3.0) must not exceed AveRooms (2.0)"} in detail  # fmt: skip
    assert {(d["field"], d["rule"]) for d in detail} == {
        ("AveBedrms", "at_most_ave_rooms"),
        ("Colour", "unknown_field"),
    }
    row = logged(engine, response.headers["X-Request-ID"])
    assert row["status"] == 422 and row["inputs"] == house and row["prediction"] is None
    assert {e["rule"] for e in row["error"]} == {"at_most_ave_rooms", "unknown_field"}


def house_json(**literals: str) -> bytes:
    """A typical house as JSON text, with some values given as raw JSON literals."""
    values = {name: repr(value) for name, value in typical_row().items()} | literals
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}").encode()


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        (house_json(MedInc="NaN"), "MedInc", "finite"),
        (house_json(HouseAge="Infinity"), "HouseAge", "finite"),
        (house_json(AveOccup="-Infinity"), "AveOccup", "finite"),
        (house_json(MedInc='"3.5"'), "MedInc", "number"),
        (house_json(Population="true"), "Population", "number"),
        (house_json(Latitude="null"), "Latitude", "number"),
        (b"[1, 2]", "body", "object"),
        (b"{not json", "body", "json"),
    ],
)
def test_non_numbers_and_non_json_are_rejected(
    client: TestClient, engine: Engine, body: bytes, field: str, rule: str
) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert [(d["field"], d["rule"]) for d in response.json()["detail"]] == [(field, rule)]
    row = logged(engine, response.headers["X-Request-ID"])
    assert row["status"] == 422
    if rule == "json":  # not JSON: the raw text is kept instead
        assert row["inputs"] is None and row["raw_body"] == body.decode()


def test_a_missing_feature_is_required(client: TestClient) -> None:
    house = typical_row()
    del house["Latitude"]
    response = client.post("/predict", json=house)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"field": "Latitude", "rule": "required", "message": "Latitude is required"}
    ]


def test_a_body_over_the_limit_is_413_by_header_and_by_stream(
    client: TestClient, engine: Engine, api_settings
) -> None:
    too_big = b" " * (api_settings.max_body_bytes + 1)
    declared = client.post(
        "/predict", content=too_big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413 and "larger than" in declared.json()["detail"]

    def chunks():  # no Content-Length: the size is only known while receiving
        for _ in range(api_settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    streamed = client.post(
        "/predict", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    for response in (declared, streamed):
        assert logged(engine, response.headers["X-Request-ID"])["status"] == 413


def test_a_batch_gets_a_result_or_an_error_per_row(
    client: TestClient, engine: Engine, reference_model
) -> None:
    good = [typical_row(), dict(typical_row(), MedInc=1.2, HouseAge=52.0)]
    houses = [good[0], dict(typical_row(), Latitude=45.0), "not a house", good[1]]
    response = client.post("/predict/batch", json={"houses": houses})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["predicted"], body["rejected"]) == (2, 2)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["prediction"] for r in (results[0], results[3])] == pytest.approx(
        expected(reference_model, *good), rel=1e-12
    )
    assert results[1]["errors"][0]["field"] == "Latitude" and results[1]["prediction"] is None
    assert results[2]["errors"][0]["rule"] == "object"
    assert results[3]["prediction_id"] == f"{body['request_id']}-3"
    row = logged(engine, body["request_id"])
    # The log keeps the houses it predicted; the rejected rows' reasons are in ``error``.
    assert row["status"] == 200 and row["inputs"] == [good[0], None, None, good[1]]
    assert row["predictions"] == [results[0]["prediction"], None, None, results[3]["prediction"]]
    assert [e["index"] for e in row["error"]] == [1, 2]


def test_a_batch_over_the_row_limit_is_rejected_whole(client: TestClient) -> None:
    response = client.post(
        "/predict/batch", json={"houses": [typical_row()] * (MAX_BATCH_ROWS + 1)}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["rule"] == "max_items"
    assert client.post("/predict/batch", json={"houses": []}).status_code == 422


def test_the_largest_batch_is_served(client: TestClient) -> None:
    response = client.post("/predict/batch", json={"houses": [typical_row()] * MAX_BATCH_ROWS})
    assert response.status_code == 200
    assert response.json()["predicted"] == MAX_BATCH_ROWS


def test_wrong_method_is_logged_too(client: TestClient, engine: Engine) -> None:
    response = client.get("/predict")
    assert response.status_code == 405
    assert logged(engine, response.headers["X-Request-ID"])["status"] == 405
