"""The feature spec and the California outline."""

from __future__ import annotations

import pytest

from housing.features import BY_NAME, FEATURE_NAMES, FEATURES, typical_row
from housing.geo import in_california


def test_spec_is_consistent() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURES) == 8
    for feature in FEATURES:
        assert feature.min < feature.typical < feature.max, feature.name
        assert feature.unit and feature.description


def test_typical_row_follows_spec_order() -> None:
    assert list(typical_row()) == list(FEATURE_NAMES)
    assert typical_row()["MedInc"] == BY_NAME["MedInc"].typical


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(34.05, -118.25), (37.77, -122.42), (38.58, -121.49), (32.72, -117.16), (41.75, -124.19)],
)
def test_californian_cities_are_inside(lat: float, lon: float) -> None:
    assert in_california(lat, lon)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (39.53, -119.81),  # Reno, Nevada: inside the bounding box
        (36.17, -115.14),  # Las Vegas
        (32.45, -116.90),  # Tijuana, Mexico
        (42.33, -122.87),  # Medford, Oregon
        (33.5, -121.0),  # the Pacific
        (-118.25, 34.05),  # swapped coordinates
    ],
)
def test_points_outside_are_rejected(lat: float, lon: float) -> None:
    assert not in_california(lat, lon)


def test_regions_cover_the_state_with_named_cities() -> None:
    """Every point gets one of the four regions, and known places land where a user expects."""
    from housing.geo import REGIONS, regions_of

    places = {  # (lat, lon) -> region
        (40.80, -124.16): "north",  # Eureka
        (38.58, -121.49): "north",  # Sacramento
        (37.77, -122.42): "bay_area",  # San Francisco
        (37.34, -121.89): "bay_area",  # San Jose
        (36.74, -119.79): "central",  # Fresno
        (35.37, -119.02): "central",  # Bakersfield
        (34.05, -118.24): "south",  # Los Angeles
        (32.72, -117.16): "south",  # San Diego
    }
    lats, lons = zip(*places)
    assert list(regions_of(lats, lons)) == list(places.values())
    assert set(regions_of(lats, lons)) == set(REGIONS)
