"""The one feature specification: names, units, descriptions, physical ranges, typical values.

Data validation, the API's request model, the UI's form and drift detection all read this
module; nothing else states a range. Ranges are *physical* bounds (what a census block group
can plausibly have), wide enough for every row of the real dataset, narrow enough to catch
unit mistakes (dollars instead of $10k, swapped coordinates, a percentage instead of a ratio).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Feature:
    """One model input: its meaning and the values it may take (inclusive bounds)."""

    name: str
    unit: str
    description: str
    min: float
    max: float
    typical: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FEATURES: tuple[Feature, ...] = (
    Feature(
        "MedInc",
        "$10,000",
        "Median household income in the block group",
        0.0,
        20.0,
        3.53,
    ),
    Feature(
        "HouseAge",
        "years",
        "Median age of the houses in the block group (capped at 52 in the census data)",
        0.0,
        100.0,
        29.0,
    ),
    Feature(
        "AveRooms",
        "rooms per household",
        "Average number of rooms per household",
        0.5,
        200.0,
        5.23,
    ),
    Feature(
        "AveBedrms",
        "bedrooms per household",
        "Average number of bedrooms per household",
        0.1,
        50.0,
        1.05,
    ),
    Feature(
        "Population",
        "people",
        "Number of people living in the block group",
        1.0,
        50000.0,
        1166.0,
    ),
    Feature(
        "AveOccup",
        "people per household",
        "Average number of household members",
        0.5,
        1500.0,
        2.82,
    ),
    Feature(
        "Latitude",
        "degrees north",
        "Latitude of the block group's centre (inside California)",
        32.5,
        42.0,
        34.26,
    ),
    Feature(
        "Longitude",
        "degrees east",
        "Longitude of the block group's centre (inside California; negative = west)",
        -124.5,
        -114.0,
        -118.49,
    ),
)

# The target's range is the label's real one (the census' floor and cap): a label outside it is
# not a house of this dataset, and feedback or uploads claiming one are refused.
TARGET = Feature(
    "MedHouseVal",
    "$100,000",
    "Median house value in the block group (censored at 5.00001 in the census data)",
    0.14999,
    5.00001,
    1.80,
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
TARGET_DOLLARS = 100_000.0
"""One target unit in dollars."""


def typical_row() -> dict[str, float]:
    """A valid house made of typical values, in spec order (handy for examples and smoke tests)."""
    return {f.name: f.typical for f in FEATURES}
