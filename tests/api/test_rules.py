"""The request model and its business rules against the real dataset and by construction."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from housing.features import BY_NAME, FEATURE_NAMES, FEATURES, typical_row
from housing.service.rules import RULES, describe, house_problems
from housing.service.schemas import House, schema_info


@pytest.fixture(scope="module")
def dataset_rows(dataset_available: bool) -> list[dict[str, float]]:
    if not dataset_available:
        pytest.fail("SCIKIT_LEARN_DATA must point at the offline dataset (see shared/data)")
    from sklearn.datasets import fetch_california_housing

    frame = fetch_california_housing(as_frame=True, download_if_missing=False).frame
    return frame[list(FEATURE_NAMES)].to_dict("records")


def test_every_real_block_group_is_a_valid_house(dataset_rows: list[dict[str, float]]) -> None:
    assert len(dataset_rows) == 20_640
    TypeAdapter(list[House]).validate_python(dataset_rows)  # raises naming the first bad row
    assert not [row for row in dataset_rows if house_problems(row)]


def test_ranges_come_from_the_feature_spec() -> None:
    properties = House.model_json_schema()["properties"]
    assert list(properties) == list(FEATURE_NAMES)
    for feature in FEATURES:
        assert properties[feature.name]["minimum"] == feature.min
        assert properties[feature.name]["maximum"] == feature.max
        assert properties[feature.name]["unit"] == feature.unit
    served = schema_info()
    assert [f.model_dump() for f in served.features] == [f.as_dict() for f in FEATURES]
    assert {r.name for r in served.rules} == {r.name for r in RULES}


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"AveRooms": 2.0, "AveBedrms": 2.5}, "AveBedrms", "at_most_ave_rooms"),
        ({"Population": 3.0, "AveOccup": 4.0}, "AveOccup", "at_least_one_household"),
        (
            {"Population": 4.0, "AveOccup": 2.0, "AveBedrms": 0.4},
            "AveOccup",
            "at_least_one_bedroom",
        ),
        ({"Latitude": 36.0, "Longitude": -115.0}, "Longitude", "inside_california"),  # Nevada
        ({"Latitude": 33.0, "Longitude": -121.0}, "Longitude", "inside_california"),  # Pacific
    ],
)
def test_each_rule_names_its_field(change: dict, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        House.model_validate(typical_row() | change)
    assert [(d["field"], d["rule"]) for d in map(describe, caught.value.errors())] == [
        (field, rule)
    ]


def test_a_rule_is_not_checked_on_a_value_that_already_failed() -> None:
    with pytest.raises(ValidationError) as caught:
        House.model_validate(typical_row() | {"AveRooms": 0.1, "AveBedrms": 3.0})
    assert [d["rule"] for d in map(describe, caught.value.errors())] == ["min"]


def test_range_messages_give_bound_and_unit() -> None:
    with pytest.raises(ValidationError) as caught:
        House.model_validate(typical_row() | {"MedInc": 150000.0})
    (detail,) = map(describe, caught.value.errors())
    bound = BY_NAME["MedInc"].max
    assert detail == {
        "field": "MedInc",
        "rule": "max",
        "message": f"MedInc (150000.0) must be at most {bound!r} $10,000",
    }
