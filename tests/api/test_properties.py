"""Property-based: any valid house gets a prediction; breaking one rule names that field."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from housing.features import BY_NAME, FEATURES
from housing.geo import in_california
from housing.service.rules import house_problems

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def in_range(name: str) -> st.SearchStrategy[float]:
    feature = BY_NAME[name]
    return st.floats(feature.min, feature.max, allow_nan=False, allow_infinity=False)


@st.composite
def valid_houses(draw: st.DrawFn) -> dict[str, float]:
    """Houses inside every range and rule (built to satisfy them, not filtered blindly)."""
    house = {f.name: draw(in_range(f.name)) for f in FEATURES}
    rooms = BY_NAME["AveRooms"]
    # Mostly realistic homes, but the whole range too (resorts and dorms reach the maximum).
    house["AveRooms"] = draw(st.floats(rooms.min, 20.0) | st.floats(rooms.min, rooms.max))
    bedrooms_max = min(house["AveRooms"], BY_NAME["AveBedrms"].max)
    house["AveBedrms"] = draw(st.floats(BY_NAME["AveBedrms"].min, bedrooms_max))
    occupancy_max = min(BY_NAME["AveOccup"].max, house["Population"])  # >= 1 household
    house["AveOccup"] = draw(st.floats(BY_NAME["AveOccup"].min, max(occupancy_max, 0.5)))
    # Anywhere in the state, edges included: the outline, not a few known cities.
    assume(in_california(house["Latitude"], house["Longitude"]))
    assume(not house_problems(house))
    return house


@SETTINGS
@given(house=valid_houses())
def test_any_valid_house_is_predicted(client: TestClient, house: dict[str, float]) -> None:
    response = client.post("/predict", json=house)
    assert response.status_code == 200, response.text
    assert math.isfinite(response.json()["prediction"])


@SETTINGS
@given(house=valid_houses())
def test_any_valid_house_gets_an_interval_around_its_prediction(
    client: TestClient, house: dict[str, float]
) -> None:
    body = client.post("/predict", json=house).json()
    interval = body["interval"]
    assert interval["level"] == 0.9
    assert interval["low"] <= body["prediction"] <= interval["high"]
    assert 0.14999 <= interval["low"] and interval["high"] <= max(5.00001, body["prediction"])
    assert interval["low_dollars"] == interval["low"] * 100_000


# One way to break each check, from a valid house; the field the error must name.
BREAKERS = {
    "range": st.sampled_from([f.name for f in FEATURES]).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.one_of(
                st.floats(max_value=BY_NAME[name].min, exclude_max=True, allow_infinity=False),
                st.floats(min_value=BY_NAME[name].max, exclude_min=True, allow_infinity=False),
            ).filter(lambda v: not math.isnan(v)),
        )
    ),
}


@SETTINGS
@given(house=valid_houses(), broken=BREAKERS["range"])
def test_one_value_out_of_range_is_named(
    client: TestClient, house: dict[str, float], broken: tuple[str, float]
) -> None:
    name, value = broken
    response = client.post("/predict", json=house | {name: value})
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == [name]


@SETTINGS
@given(house=valid_houses(), data=st.data())
def test_more_bedrooms_than_rooms_is_named(
    client: TestClient, house: dict[str, float], data: st.DataObject
) -> None:
    most = BY_NAME["AveBedrms"].max
    assume(house["AveRooms"] < most)
    bedrooms = data.draw(st.floats(house["AveRooms"], most, exclude_min=True))
    response = client.post("/predict", json=house | {"AveBedrms": bedrooms})
    assert response.status_code == 422
    assert [(d["field"], d["rule"]) for d in response.json()["detail"]] == [
        ("AveBedrms", "at_most_ave_rooms")
    ]


@SETTINGS
@given(house=valid_houses(), data=st.data())
def test_fewer_than_one_household_is_named(
    client: TestClient, house: dict[str, float], data: st.DataObject
) -> None:
    most = BY_NAME["AveOccup"].max
    population = data.draw(st.floats(1.0, most * 0.9))
    households = data.draw(st.floats(population / most * 1.01, 0.99))
    changed = {"Population": population, "AveOccup": population / households}
    response = client.post("/predict", json=house | changed)
    assert response.status_code == 422
    assert [(d["field"], d["rule"]) for d in response.json()["detail"]] == [
        ("AveOccup", "at_least_one_household")
    ]


@SETTINGS
@given(
    house=valid_houses(),
    latitude=in_range("Latitude"),
    longitude=in_range("Longitude"),
)
def test_a_point_outside_california_is_named(
    client: TestClient, house: dict[str, float], latitude: float, longitude: float
) -> None:
    assume(not in_california(latitude, longitude))
    response = client.post("/predict", json=house | {"Latitude": latitude, "Longitude": longitude})
    assert response.status_code == 422
    assert [(d["field"], d["rule"]) for d in response.json()["detail"]] == [
        ("Longitude", "inside_california")
    ]
