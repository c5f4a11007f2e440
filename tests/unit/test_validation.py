"""Each rule of the data spec rejects what it should, accepts its boundary and says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from housing.features import FEATURE_NAMES, FEATURES, TARGET, typical_row
from housing.validation import (
    EMPTY,
    FINITE,
    MISSING,
    RANGE,
    TYPE,
    DataValidationError,
    check_frame,
    validate_frame,
)


def frame(rows: int = 5, **columns: object) -> pd.DataFrame:
    """``rows`` typical houses (target included), with some columns replaced."""
    data = {name: [value] * rows for name, value in typical_row().items()}
    data[TARGET.name] = [TARGET.typical] * rows
    data.update(columns)
    return pd.DataFrame(data)


def only(violations: list, column: str, rule: str):
    assert [(v.column, v.rule) for v in violations] == [(column, rule)], violations
    return violations[0]


def test_typical_frame_is_valid() -> None:
    assert validate_frame(frame(), require_target=True) == []


@pytest.mark.parametrize("feature", [*FEATURES, TARGET], ids=lambda f: f.name)
def test_bounds_are_inclusive(feature) -> None:
    df = frame(2, **{feature.name: [feature.min, feature.max]})
    assert validate_frame(df, require_target=True) == []


@pytest.mark.parametrize("feature", [*FEATURES, TARGET], ids=lambda f: f.name)
def test_just_outside_the_bounds_is_out_of_range(feature) -> None:
    span = feature.max - feature.min
    values = [feature.min - span * 1e-6, feature.typical, feature.max + span * 1e-6]
    violation = only(
        validate_frame(frame(3, **{feature.name: values}), require_target=True),
        feature.name,
        RANGE,
    )
    assert violation.rows == 2
    assert violation.first_row == 0
    assert violation.message == (
        f"column {feature.name}: 2 rows out of range [{feature.min:g}, {feature.max:g}]"
    )


def test_out_of_range_message_matches_the_cli_format() -> None:
    df = frame(6, MedInc=[1.0, 25.0, 30.0, -1.0, 3.0, 4.0])
    violation = only(validate_frame(df, require_target=True), "MedInc", RANGE)
    assert violation.message == "column MedInc: 3 rows out of range [0, 20]"
    assert violation.first_row == 1


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_missing_feature_column(name: str) -> None:
    df = frame().drop(columns=[name])
    violation = only(validate_frame(df, require_target=False), name, MISSING)
    assert violation.rows == 5
    assert violation.message == f"column {name}: missing"


def test_target_is_only_required_when_asked() -> None:
    df = frame().drop(columns=[TARGET.name])
    assert validate_frame(df, require_target=False) == []
    only(validate_frame(df, require_target=True), TARGET.name, MISSING)


def test_every_missing_column_is_reported_at_once() -> None:
    df = frame()[["MedInc"]]
    violations = validate_frame(df, require_target=True)
    assert {v.column for v in violations} == set(FEATURE_NAMES[1:]) | {TARGET.name}
    assert {v.rule for v in violations} == {MISSING}


def test_non_numeric_values_are_a_type_violation() -> None:
    df = frame(4, HouseAge=["12", "twelve", "30", None])
    violations = validate_frame(df, require_target=True)
    assert [(v.column, v.rule, v.rows) for v in violations] == [
        ("HouseAge", TYPE, 1),
        ("HouseAge", FINITE, 1),
    ]
    assert violations[0].message == "column HouseAge: 1 row not numeric"
    assert violations[0].first_row == 1


def test_numeric_strings_are_accepted() -> None:
    df = frame(2, HouseAge=["12", "52.0"])
    assert validate_frame(df, require_target=True) == []


def test_booleans_are_not_numbers() -> None:
    violation = only(
        validate_frame(frame(3, MedInc=[True, False, True]), require_target=True), "MedInc", TYPE
    )
    assert violation.rows == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_nan_and_inf_are_rejected(bad: object) -> None:
    df = frame(3, AveOccup=[2.0, bad, 3.0])
    violation = only(validate_frame(df, require_target=True), "AveOccup", FINITE)
    assert violation.rows == 1
    assert violation.first_row == 1
    assert "NaN/inf" in violation.message


def test_nullable_float_with_missing_values() -> None:
    df = frame(3, Population=pd.array([100.0, None, 200.0], dtype="Float64"))
    violation = only(validate_frame(df, require_target=True), "Population", FINITE)
    assert violation.rows == 1


def test_several_rules_on_several_columns_are_all_reported() -> None:
    df = frame(4, MedInc=[np.nan, 99.0, 1.0, 2.0], Latitude=[0.0, 0.0, 34.0, 34.0])
    got = {(v.column, v.rule, v.rows) for v in validate_frame(df, require_target=True)}
    assert got == {("MedInc", FINITE, 1), ("MedInc", RANGE, 1), ("Latitude", RANGE, 2)}


def test_extra_columns_are_ignored() -> None:
    assert validate_frame(frame(ocean_proximity="NEAR BAY"), require_target=True) == []


def test_empty_frame_is_rejected() -> None:
    violation = only(validate_frame(frame(0), require_target=True), "*", EMPTY)
    assert violation.message == "no rows"


def test_duplicated_column_is_rejected() -> None:
    df = pd.concat([frame(), frame()[["MedInc"]]], axis=1)
    violation = only(validate_frame(df, require_target=True), "MedInc", TYPE)
    assert "2 times" in violation.message


def test_check_frame_raises_with_every_violation_and_line_numbers() -> None:
    df = frame(4, MedInc=[1.0, 2.0, 21.0, 3.0]).drop(columns=["HouseAge"])
    with pytest.raises(DataValidationError) as caught:
        check_frame(df, require_target=True, source="x.csv", first_line=2)
    error = caught.value
    assert [(v.column, v.rule) for v in error.violations] == [
        ("MedInc", RANGE),
        ("HouseAge", MISSING),
    ]
    assert error.lines() == [
        "x.csv: column MedInc: 1 row out of range [0, 20] (first at line 4)",
        "x.csv: column HouseAge: missing",
    ]
    assert "column MedInc" in str(error)


def test_check_frame_passes_a_valid_frame() -> None:
    check_frame(frame(), require_target=True)


def test_validation_does_not_modify_the_frame() -> None:
    df = frame(3, HouseAge=["1", "x", "3"])
    before = df.copy()
    validate_frame(df, require_target=True)
    pd.testing.assert_frame_equal(df, before)
