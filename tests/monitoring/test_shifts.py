"""The traffic shifts: what each one changes, and that shifted houses stay valid."""

from __future__ import annotations

import pandas as pd
import pytest

from housing.features import BY_NAME, FEATURE_NAMES
from housing.monitoring import shifts
from housing.validation import validate_frame

PLACES = pd.DataFrame(
    {
        "name": ["Santa Monica", "San Francisco", "Eureka", "Fresno", "Sacramento", "Riverside"],
        "Latitude": [34.02, 37.76, 40.80, 36.75, 38.58, 33.95],
        "Longitude": [-118.49, -122.47, -124.15, -119.77, -121.49, -117.40],
    }
)


def test_coastal_keeps_the_beach_towns_and_drops_the_inland_ones() -> None:
    kept = shifts.apply_shift(PLACES, "coastal")["name"].tolist()
    assert kept == ["Santa Monica", "San Francisco", "Eureka"]


def test_income_and_age_move_only_their_column(held_out: pd.DataFrame) -> None:
    richer = shifts.apply_shift(held_out, shifts.Shift.income)
    older = shifts.apply_shift(held_out, "age")
    ratio = richer["MedInc"] / held_out["MedInc"]
    assert ratio.between(1.0, shifts.INCOME_FACTOR + 1e-9).all()
    assert (ratio > shifts.INCOME_FACTOR - 1e-9).mean() > 0.99  # only the top is clipped
    assert (older["HouseAge"] - held_out["HouseAge"]).eq(shifts.AGE_YEARS).all()
    untouched = [n for n in FEATURE_NAMES if n != "MedInc"]
    pd.testing.assert_frame_equal(richer[untouched], held_out[untouched])
    assert richer is not held_out and held_out["MedInc"].max() <= BY_NAME["MedInc"].max


@pytest.mark.parametrize("shift", list(shifts.Shift))
def test_shifted_houses_stay_inside_the_spec(held_out: pd.DataFrame, shift: shifts.Shift) -> None:
    shifted = shifts.apply_shift(held_out, shift)
    assert len(shifted) >= 500, "every shift leaves enough rows to simulate from"
    assert validate_frame(shifted, require_target=True) == []


def test_clipping_holds_at_the_spec_bounds() -> None:
    top = pd.DataFrame({"MedInc": [BY_NAME["MedInc"].max], "HouseAge": [BY_NAME["HouseAge"].max]})
    assert shifts.richer(top)["MedInc"].iat[0] == BY_NAME["MedInc"].max
    assert shifts.older(top)["HouseAge"].iat[0] == BY_NAME["HouseAge"].max


def test_unknown_shift_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown drift 'tsunami': choose one of none, income"):
        shifts.apply_shift(PLACES, "tsunami")
