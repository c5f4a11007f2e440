"""POST /feedback and the log queries monitoring relies on."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from housing.features import FEATURE_NAMES, typical_row
from housing.service import log as prediction_log


def test_feedback_labels_single_and_batch_predictions(client: TestClient, engine: Engine) -> None:
    single = client.post("/predict", json=typical_row()).json()
    houses = [dict(typical_row(), MedInc=2.0), dict(typical_row(), Latitude=99.0)]
    batch = client.post("/predict/batch", json={"houses": houses}).json()
    batch_id = batch["results"][0]["prediction_id"]

    first = client.post("/feedback", json={"prediction_id": single["prediction_id"], "actual": 2.5})
    second = client.post("/feedback", json={"prediction_id": batch_id, "actual": 1.25})
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["prediction"] == single["prediction"]
    assert second.json()["prediction"] == batch["results"][0]["prediction"]

    labelled = prediction_log.labelled_predictions(engine, 10)
    assert list(labelled.columns[:3]) == ["prediction", "actual", "created_at"]
    mine = labelled.set_index("prediction_id").loc[[batch_id, single["prediction_id"]]]
    assert mine["actual"].tolist() == [1.25, 2.5]
    assert mine["prediction"].tolist() == [second.json()["prediction"], single["prediction"]]
    assert labelled["created_at"].is_monotonic_decreasing


def test_feedback_for_unknown_failed_or_labelled_predictions_is_refused(
    client: TestClient, engine: Engine
) -> None:
    unknown = client.post("/feedback", json={"prediction_id": "0" * 32, "actual": 1.0})
    assert unknown.status_code == 404
    rejected_row = client.post("/predict/batch", json={"houses": [{"MedInc": 1.0}]}).json()
    failed = client.post(
        "/feedback", json={"prediction_id": f"{rejected_row['request_id']}-0", "actual": 1.0}
    )
    assert failed.status_code == 404
    done = client.post("/predict", json=typical_row()).json()["prediction_id"]
    assert client.post("/feedback", json={"prediction_id": done, "actual": 1.0}).status_code == 200
    again = client.post("/feedback", json={"prediction_id": done, "actual": 3.0})
    assert again.status_code == 409
    for response in (unknown, failed, again):
        rows = prediction_log.page(engine, limit=50, endpoint="/feedback")
        row = next(r for r in rows if r["id"] == response.headers["X-Request-ID"])
        assert row["status"] == response.status_code and row["inputs"]["actual"] in (1.0, 3.0)


def test_concurrent_feedback_for_one_prediction_is_accepted_once(
    client: TestClient, engine: Engine
) -> None:
    """Sent at once, most pass the "given already?" check before the first one commits (without
    the unique key, 21 of these 24 were accepted); the key decides, each loser gets a 409 row."""
    ids = [client.post("/predict", json=typical_row()).json()["prediction_id"] for _ in range(3)]
    bodies = [{"prediction_id": pid, "actual": 1.0 + k} for pid in ids for k in range(8)]

    async def send_together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)  # on the running app's event loop
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            return await asyncio.gather(*(http.post("/feedback", json=b) for b in bodies))

    responses = client.portal.call(send_together)

    assert Counter(r.status_code for r in responses) == {200: len(ids), 409: len(bodies) - len(ids)}
    winners = {r.json()["prediction_id"]: r.json()["actual"] for r in responses if r.is_success}
    assert sorted(winners) == sorted(ids)
    logged = {
        row["id"]: row for row in prediction_log.page(engine, limit=500, endpoint="/feedback")
    }
    for body, response in zip(bodies, responses, strict=True):
        row = logged[response.headers["X-Request-ID"]]
        assert row["status"] == response.status_code and row["inputs"] == body
        if response.status_code == 409:
            assert response.json()["detail"] == prediction_log.feedback_taken(body["prediction_id"])
    labelled = prediction_log.labelled_predictions(engine, 500).set_index("prediction_id")
    assert labelled.loc[ids, "actual"].to_dict() == winners


@pytest.mark.parametrize(
    "body",
    [
        {"prediction_id": "not-an-id", "actual": 1.0},
        {"prediction_id": "0" * 32, "actual": -1.0},
        {"prediction_id": "0" * 32, "actual": 1.0, "extra": 1},
        {"prediction_id": "0" * 32},
    ],
)
def test_malformed_feedback_is_422(client: TestClient, body: dict) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] in ("prediction_id", "actual", "extra")


def test_recent_inputs_expands_batches_and_skips_rejected_rows(
    client: TestClient, engine: Engine
) -> None:
    houses = [dict(typical_row(), HouseAge=float(age)) for age in (11, 12, 13)]
    batch = houses[:2] + [dict(typical_row(), MedInc=-5.0)]
    client.post("/predict/batch", json={"houses": batch})
    client.post("/predict", json=houses[2])
    client.post("/predict", json=dict(typical_row(), MedInc=-5.0))  # rejected: not an input
    recent = prediction_log.recent_inputs(engine, 3)
    assert list(recent.columns) == list(FEATURE_NAMES)
    expected = pd.DataFrame([houses[2], houses[0], houses[1]], columns=list(FEATURE_NAMES))
    pd.testing.assert_frame_equal(
        recent.sort_values("HouseAge").reset_index(drop=True),
        expected.sort_values("HouseAge").reset_index(drop=True),
    )
    assert len(prediction_log.recent_inputs(engine, 10_000)) >= 3
