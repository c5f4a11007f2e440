"""POST /feedback and the log queries monitoring relies on."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from housing.features import FEATURE_NAMES, TARGET, typical_row
from housing.service import log as prediction_log


def label(answer: dict, actual: float, prediction_id: str | None = None) -> dict:
    """A /feedback body for a /predict answer (or a row of a batch answer: ``prediction_id``)."""
    return {
        "prediction_id": prediction_id or answer["prediction_id"],
        "actual": actual,
        "feedback_token": answer["feedback_token"],
    }


def test_feedback_labels_single_and_batch_predictions(client: TestClient, engine: Engine) -> None:
    single = client.post("/predict", json=typical_row()).json()
    houses = [dict(typical_row(), MedInc=2.0), dict(typical_row(), Latitude=99.0)]
    batch = client.post("/predict/batch", json={"houses": houses}).json()
    batch_id = batch["results"][0]["prediction_id"]

    first = client.post("/feedback", json=label(single, 2.5))
    second = client.post("/feedback", json=label(batch, 1.25, batch_id))
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
    done = client.post("/predict", json=typical_row()).json()
    unknown = client.post("/feedback", json=label(done, 1.0, "0" * 32))
    assert unknown.status_code == 404
    rejected_row = client.post("/predict/batch", json={"houses": [{"MedInc": 1.0}]}).json()
    failed = client.post(
        "/feedback", json=label(rejected_row, 1.0, f"{rejected_row['request_id']}-0")
    )
    assert failed.status_code == 404
    assert client.post("/feedback", json=label(done, 1.0)).status_code == 200
    again = client.post("/feedback", json=label(done, 3.0))
    assert again.status_code == 409
    for response in (unknown, failed, again):
        rows = prediction_log.page(engine, limit=50, endpoint="/feedback")
        row = next(r for r in rows if r["id"] == response.headers["X-Request-ID"])
        assert row["status"] == response.status_code and row["inputs"]["actual"] in (1.0, 3.0)


def test_feedback_without_or_with_another_token_is_403_and_logged(
    client: TestClient, engine: Engine
) -> None:
    """The prediction id alone (listed in the log, shown in the UI) does not allow labelling."""
    mine = client.post("/predict", json=typical_row()).json()
    theirs = client.post("/predict", json=typical_row()).json()
    batch = client.post("/predict/batch", json={"houses": [typical_row()]}).json()
    bodies = [
        {"prediction_id": mine["prediction_id"], "actual": 2.0},  # no token
        label(theirs, 2.0, mine["prediction_id"]),  # a real token, of another prediction
        label(mine, 2.0, f"{batch['request_id']}-0"),  # a single's token on a batch row
        label(batch, 2.0, mine["prediction_id"]),  # a batch's token on a single
    ]
    for body in bodies:
        response = client.post("/feedback", json=body)
        assert response.status_code == 403, response.text
        assert "feedback_token" in response.json()["detail"]
        rows = prediction_log.page(engine, limit=50, endpoint="/feedback")
        row = next(r for r in rows if r["id"] == response.headers["X-Request-ID"])
        assert row["status"] == 403 and row["actual"] is None
        assert "feedback_token" not in row["inputs"]  # the secret is not logged
    assert not prediction_log.feedback_exists(engine, mine["prediction_id"])
    assert client.post("/feedback", json=label(mine, 2.0)).status_code == 200


def test_only_the_hash_of_the_token_is_logged(client: TestClient, engine: Engine) -> None:
    answer = client.post("/predict", json=typical_row()).json()
    batch = client.post("/predict/batch", json={"houses": [typical_row()]}).json()
    rows = {row["id"]: row for row in prediction_log.page(engine, limit=50)}
    for ident, token in ((answer["prediction_id"], answer["feedback_token"]),
                         (batch["request_id"], batch["feedback_token"])):  # fmt: skip
        stored = rows[ident]["feedback_token_sha256"]
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(rows[ident])
    assert answer["feedback_token"] != batch["feedback_token"]


def test_leading_zeros_name_the_same_batch_row(client: TestClient, engine: Engine) -> None:
    """``-0``, ``-00`` and ``-000`` were three ids for one row, each accepted and counted."""
    batch = client.post("/predict/batch", json={"houses": [typical_row(), typical_row()]}).json()
    request_id = batch["request_id"]
    first = client.post("/feedback", json=label(batch, 1.0, f"{request_id}-0"))
    assert first.status_code == 200, first.text
    for alias in ("00", "000", "0000"):
        again = client.post("/feedback", json=label(batch, 4.0, f"{request_id}-{alias}"))
        assert again.status_code == 409, again.text
    assert client.post("/feedback", json=label(batch, 2.0, f"{request_id}-01")).status_code == 200
    labelled = prediction_log.labelled_predictions(engine, 500)
    mine = labelled[labelled["prediction_id"].str.startswith(request_id)]
    assert sorted(mine["prediction_id"]) == [f"{request_id}-0", f"{request_id}-1"]
    assert sorted(mine["actual"]) == [1.0, 2.0]


@pytest.mark.parametrize("actual", [0.0, 0.1, 5.01, 19.0])
def test_actual_outside_the_labels_range_is_422(
    client: TestClient, engine: Engine, actual: float
) -> None:
    """The label's real range from the feature spec (the census floor and cap), not [0, 20]."""
    answer = client.post("/predict", json=typical_row()).json()
    response = client.post("/feedback", json=label(answer, actual))
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "actual"
    rows = prediction_log.page(engine, limit=50, endpoint="/feedback")
    row = next(r for r in rows if r["id"] == response.headers["X-Request-ID"])
    assert row["inputs"] == {"prediction_id": answer["prediction_id"], "actual": actual}


@pytest.mark.parametrize("actual", [TARGET.min, TARGET.max])
def test_the_labels_bounds_are_accepted(client: TestClient, actual: float) -> None:
    answer = client.post("/predict", json=typical_row()).json()
    assert client.post("/feedback", json=label(answer, actual)).status_code == 200


def test_concurrent_feedback_for_one_prediction_is_accepted_once(
    client: TestClient, engine: Engine
) -> None:
    """Sent at once, most pass the "given already?" check before the first one commits (without
    the unique key, 21 of these 24 were accepted); the key decides, each loser gets a 409 row."""
    answers = [client.post("/predict", json=typical_row()).json() for _ in range(3)]
    ids = [answer["prediction_id"] for answer in answers]
    bodies = [label(answer, 1.0 + k / 2) for answer in answers for k in range(8)]

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
        unsecret = {k: v for k, v in body.items() if k != "feedback_token"}
        assert row["status"] == response.status_code and row["inputs"] == unsecret
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
        {"prediction_id": "0" * 32, "actual": 1.0, "feedback_token": "not a token!"},
        {"prediction_id": "0" * 32},
    ],
)
def test_malformed_feedback_is_422(client: TestClient, body: dict) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 422
    fields = ("prediction_id", "actual", "extra", "feedback_token")
    assert response.json()["detail"][0]["field"] in fields


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
