"""POST /explain and /explain/what-if on the real champion: additive and exact for what /predict
serves, logged, rate-limited on their own, following hot reloads and rollbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from service_tools import API_KEY, MODEL, client_for, register_candidate, settings_for

from api.main import create_app
from housing import registry
from housing.explain import PLAYERS
from housing.features import FEATURES, typical_row
from housing.service import log as prediction_log
from housing.service.rules import house_problems

ADMIN = {"X-API-Key": API_KEY}


def random_houses(count: int, seed: int = 3) -> list[dict[str, float]]:
    """Valid houses drawn across the spec's ranges and the whole state (rules enforced)."""
    rng = np.random.default_rng(seed)
    houses: list[dict[str, float]] = []
    while len(houses) < count:
        house = {f.name: float(rng.uniform(f.min, f.max)) for f in FEATURES}
        # Realistic block groups: the physical ranges go far beyond the data for the ratios.
        house |= {
            "MedInc": float(rng.uniform(0.5, 15.0)),
            "AveRooms": float(rng.uniform(2.0, 10.0)),
            "AveBedrms": float(rng.uniform(0.8, 2.0)),
            "Population": float(rng.uniform(100.0, 5000.0)),
            "AveOccup": float(rng.uniform(1.0, 6.0)),
        }
        if not house_problems(house):
            houses.append(house)
    return houses


def total(body: dict) -> float:
    return body["base_value"] + sum(c["contribution"] for c in body["contributions"])


def test_contributions_add_up_to_the_served_prediction_across_the_state(client) -> None:
    houses = random_houses(200)
    latitudes = [h["Latitude"] for h in houses]
    assert min(latitudes) < 34 and max(latitudes) > 39  # south to north
    for house in houses:
        explained = client.post("/explain", json=house)
        assert explained.status_code == 200, explained.text
        body = explained.json()
        served = client.post("/predict", json=house).json()
        assert abs(total(body) - served["prediction"]) <= 1e-6
        assert body["prediction"] == pytest.approx(served["prediction"], abs=1e-9)
        assert body["model_version"] == served["model_version"]
        assert sorted(c["feature"] for c in body["contributions"]) == sorted(PLAYERS)


def test_the_explanation_reads_as_the_user_typed_it(client) -> None:
    house = typical_row() | {"MedInc": 8.0}
    body = client.post("/explain", json=house).json()
    sizes = [abs(c["contribution"]) for c in body["contributions"]]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    by_player = {c["feature"]: c for c in body["contributions"]}
    assert by_player["MedInc"]["value"] == 8.0 and by_player["MedInc"]["inputs"] == ["MedInc"]
    location = by_player["location"]
    assert location["value"] is None
    assert location["values"] == {"Latitude": house["Latitude"], "Longitude": house["Longitude"]}
    for item in body["contributions"]:
        assert item["contribution_dollars"] == pytest.approx(item["contribution"] * 100_000)
    assert body["background_rows"] > 0 and "Shapley" in body["method"]


def test_explanations_are_logged_with_their_contributions(client, engine) -> None:
    house = typical_row() | {"HouseAge": 12.0}
    response = client.post("/explain", json=house)
    body = response.json()
    rows = prediction_log.page(engine, limit=1, endpoint="/explain")
    row = rows[0]
    assert row["id"] == body["explanation_id"] == response.headers["X-Request-ID"]
    assert row["status"] == 200 and row["inputs"] == house
    assert row["prediction"] == body["prediction"]
    expected = {c["feature"]: c["contribution"] for c in body["contributions"]}
    assert row["contributions"] == {"base_value": body["base_value"], **expected}
    listed = client.get(
        "/predictions",
        params={"endpoint": "/explain", "limit": 1},
        headers={"X-API-Key": API_KEY},  # the log is private: the admin key reads it
    ).json()
    assert listed["items"][0]["contributions"] == row["contributions"]


def test_a_house_predict_refuses_is_refused_alike_and_logged(client, engine) -> None:
    house = typical_row() | {"AveRooms": 2.0, "AveBedrms": 3.0}
    explained = client.post("/explain", json=house)
    assert explained.status_code == 422
    assert explained.json() == client.post("/predict", json=house).json()
    row = prediction_log.page(engine, limit=1, endpoint="/explain")[0]
    assert row["status"] == 422 and row["error"][0]["rule"] == "at_most_ave_rooms"


def test_what_if_refuses_points_outside_california_with_the_rule(client) -> None:
    house = typical_row()  # Los Angeles: west of it the Pacific, east of it Arizona
    response = client.post("/explain/what-if", json={"house": house, "feature": "Longitude"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["points"]) == 40 and body["player"] == "location"
    assert (body["low"], body["high"]) == (-124.5, -114.0)
    refused = [p for p in body["points"] if p["refused"]]
    predicted = [p for p in body["points"] if not p["refused"]]
    assert refused and predicted and body["refused"] == len(refused)
    assert {p["refused"]["rule"] for p in refused} == {"inside_california"}
    assert all(p["prediction"] is None for p in refused)
    assert min(p["value"] for p in refused) == -124.5  # the ocean
    assert max(p["value"] for p in refused) > -114.7  # Arizona
    for point in predicted[:: max(1, len(predicted) // 5)]:
        served = client.post("/predict", json=house | {"Longitude": point["value"]}).json()
        assert point["prediction"] == pytest.approx(served["prediction"], abs=1e-12)
    assert body["current_prediction"] == pytest.approx(
        client.post("/predict", json=house).json()["prediction"], abs=1e-12
    )


def test_what_if_over_a_chosen_range(client) -> None:
    body = {"house": typical_row(), "feature": "MedInc", "points": 5, "low": 1.0, "high": 9.0}
    points = client.post("/explain/what-if", json=body).json()["points"]
    assert [p["value"] for p in points] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert points[-1]["prediction"] > points[0]["prediction"]


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"feature": "location"}, "feature", "literal_error"),
        ({"points": 1000}, "points", "max"),
        ({"points": 1}, "points", "min"),
        ({"feature": "MedInc", "low": 30.0}, "low", "range"),
        ({"feature": "MedInc", "low": 5.0, "high": 2.0}, "high", "order"),
        ({"house": typical_row() | {"AveBedrms": 9.0}}, "house.AveBedrms", "at_most_ave_rooms"),
    ],
)
def test_what_if_names_the_field_it_refuses(client, change, field, rule) -> None:
    body = {"house": typical_row(), "feature": "MedInc"} | change
    response = client.post("/explain/what-if", json=body)
    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["detail"]] == [(field, rule)]


def test_models_lists_the_champions_importances(client) -> None:
    body = client.get("/models").json()
    importances = body["champion_importances"]
    assert sorted(i["feature"] for i in importances) == sorted(f.name for f in FEATURES)
    means = [i["importance_mean"] for i in importances]
    assert means == sorted(means, reverse=True) and means[0] > 0


def test_explanations_follow_a_hot_reload_and_a_rollback(registry_copy: str, tmp_path) -> None:
    house = typical_row() | {"MedInc": 6.0}
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as client:
        first = client.post("/explain", json=house).json()
        version = register_candidate(registry_copy, "random_forest")
        assert client.post("/admin/reload", headers=ADMIN).json()["version"] == version
        second = client.post("/explain", json=house).json()
        served = client.post("/predict", json=house).json()
        assert second["model_version"] == served["model_version"] == version
        assert abs(total(second) - served["prediction"]) <= 1e-6
        assert second["prediction"] != pytest.approx(first["prediction"], abs=1e-6)

        registry.rollback(client_for(registry_copy), MODEL)
        assert client.post("/admin/reload", headers=ADMIN).json()["version"] == "1"
        third = client.post("/explain", json=house).json()
        assert third["model_version"] == "1"
        for key in ("prediction", "base_value", "contributions"):
            assert third[key] == first[key]


def test_a_version_without_a_background_serves_but_does_not_explain(
    registry_copy: str, tmp_path: Path
) -> None:
    """A version registered without a training run (as if trained before /explain existed)."""
    client = client_for(registry_copy)
    source = client.get_model_version_download_uri(MODEL, "1")
    old = str(client.create_model_version(MODEL, source=source, run_id=None).version)
    registry.promote(client, MODEL, int(old))
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as api:
        assert api.post("/predict", json=typical_row()).json()["model_version"] == old
        response = api.post("/explain", json=typical_row())
        assert response.status_code == 503
        assert f"v{old} has no training run" in response.json()["detail"]
        row = prediction_log.page(api.app.state.runtime.engine, limit=1, endpoint="/explain")[0]
        assert row["status"] == 503 and row["model_version"] is None
        curve = api.post("/explain/what-if", json={"house": typical_row(), "feature": "MedInc"})
        assert curve.status_code == 200  # a curve needs no background


def test_explain_has_its_own_rate_limit(trained_registry: str, tmp_path: Path) -> None:
    settings = settings_for(trained_registry, tmp_path, explain_rate_limit="2/minute")
    with TestClient(create_app(settings)) as client:
        statuses = [client.post("/explain", json=typical_row()).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        curve = client.post("/explain/what-if", json={"house": typical_row(), "feature": "MedInc"})
        assert curve.status_code == 429
        assert all(client.post("/predict", json=typical_row()).status_code == 200 for _ in range(5))
        rows = prediction_log.page(client.app.state.runtime.engine, limit=5, endpoint="/explain")
        assert [row["status"] for row in rows][:1] == [429]


def test_the_background_is_a_seeded_training_sample_stored_with_the_version(
    client, trained_registry: str
) -> None:
    from housing.data import load_split
    from housing.explain import background_sample

    version = client_for(trained_registry).get_model_version(MODEL, "1")
    train = load_split(Path(trained_registry.removeprefix("sqlite:///")).parent / "data")[0]
    expected = background_sample(train).to_numpy()
    explainer = client.app.state.runtime.holder.current.explain.explainer
    assert version.run_id == client.app.state.runtime.holder.current.run_id
    np.testing.assert_array_equal(explainer.background, expected)  # exact round trip
    assert client.post("/explain", json=typical_row()).json()["background_rows"] == len(expected)


def test_coalitions_through_the_pipeline_add_up_to_the_served_prediction(
    trained_registry: str, tmp_path: Path
) -> None:
    settings = settings_for(trained_registry, tmp_path, explain_predict="pipeline")
    with TestClient(create_app(settings)) as client:
        assert client.app.state.runtime.holder.current.compiled is not None  # else no difference
        for house in random_houses(20, seed=11):
            body = client.post("/explain", json=house).json()
            served = client.post("/predict", json=house).json()
            assert abs(total(body) - served["prediction"]) <= 1e-6
