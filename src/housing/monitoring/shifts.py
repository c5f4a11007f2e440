"""Realistic shifts of the input distribution, shared by the drift tests and `housing simulate`.

Each shift maps a frame of houses (the spec's features, maybe more columns) to the houses a
changed world would send; shifted values stay inside the feature spec's ranges, so the API
accepts them and only the monitoring can notice.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import pandas as pd
import shapely
from shapely.geometry import LineString

from housing.features import BY_NAME

INCOME_FACTOR = 1.3
"""Incomes up 30% (a decade of wage growth the model never saw)."""
AGE_YEARS = 10.0
"""The housing stock ten years older (no new building)."""
COAST_DISTANCE_DEGREES = 0.1
""""Coastal" = within 0.1° (about 10 km) of the Pacific coastline below."""

PACIFIC_COAST: tuple[tuple[float, float], ...] = (
    (-117.12, 32.53),  # Mexican border
    (-117.25, 32.85),  # La Jolla
    (-117.90, 33.60),  # Newport Beach
    (-118.40, 33.75),  # Palos Verdes
    (-118.50, 34.00),  # Santa Monica
    (-118.80, 34.02),  # Malibu
    (-119.30, 34.28),  # Ventura
    (-119.70, 34.40),  # Santa Barbara
    (-120.47, 34.45),  # Point Conception
    (-120.64, 34.90),
    (-120.86, 35.37),  # Morro Bay
    (-121.90, 36.60),  # Monterey
    (-122.00, 36.96),  # Santa Cruz
    (-122.50, 37.50),  # Half Moon Bay
    (-122.51, 37.78),  # San Francisco
    (-123.00, 38.00),  # Point Reyes
    (-123.70, 38.90),  # Point Arena
    (-123.80, 39.45),  # Fort Bragg
    (-124.40, 40.44),  # Cape Mendocino
    (-124.16, 40.80),  # Eureka
    (-124.20, 41.75),  # Crescent City
    (-124.21, 42.00),  # Oregon border
)
"""The open-ocean coastline, simplified (lon, lat). geo.py's outline is pushed out to sea on
purpose (to contain every block group), so it cannot say how far a house is from the beach."""


class Shift(str, Enum):
    """The shifts `housing simulate --drift` knows."""

    none = "none"
    income = "income"
    coastal = "coastal"
    age = "age"


def _clip(values: pd.Series, name: str) -> pd.Series:
    spec = BY_NAME[name]
    return values.clip(lower=spec.min, upper=spec.max)


def no_shift(frame: pd.DataFrame) -> pd.DataFrame:
    """The houses as they are (a copy)."""
    return frame.copy()


def richer(frame: pd.DataFrame) -> pd.DataFrame:
    """Every block group's median income up by ``INCOME_FACTOR``."""
    out = frame.copy()
    out["MedInc"] = _clip(out["MedInc"] * INCOME_FACTOR, "MedInc")
    return out


def older(frame: pd.DataFrame) -> pd.DataFrame:
    """Every block group's houses ``AGE_YEARS`` older."""
    out = frame.copy()
    out["HouseAge"] = _clip(out["HouseAge"] + AGE_YEARS, "HouseAge")
    return out


def coast_distance(frame: pd.DataFrame) -> pd.Series:
    """Distance in degrees from each house to ``PACIFIC_COAST``."""
    coast = LineString(PACIFIC_COAST)
    points = shapely.points(frame["Longitude"].to_numpy(), frame["Latitude"].to_numpy())
    return pd.Series(shapely.distance(coast, points), index=frame.index)


def coastal_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the houses near the Pacific (fewer rows than given)."""
    return frame.loc[coast_distance(frame) < COAST_DISTANCE_DEGREES].copy()


SHIFTS: dict[Shift, Callable[[pd.DataFrame], pd.DataFrame]] = {
    Shift.none: no_shift,
    Shift.income: richer,
    Shift.coastal: coastal_only,
    Shift.age: older,
}


def apply_shift(frame: pd.DataFrame, shift: Shift | str) -> pd.DataFrame:
    """``frame`` under the named shift; unknown names raise ``ValueError`` listing the known."""
    try:
        kind = Shift(shift)
    except ValueError:
        known = ", ".join(s.value for s in Shift)
        raise ValueError(f"unknown drift {shift!r}: choose one of {known}") from None
    return SHIFTS[kind](frame)
