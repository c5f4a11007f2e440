"""California's outline, for the "the house is in California" business rule.

A simplified state polygon (lon, lat), clockwise from the Oregon border on the coast. The land
borders (Oregon at 42°N, Nevada's straight and diagonal lines, the Colorado River, Mexico) follow
the real ones closely, because that is where a wrong coordinate lands; the coastline is pushed a
little out to sea so that coastal block groups and the inhabited islands (Avalon) stay inside.
The outline is simplified, so it is widened by ``TOLERANCE_DEGREES`` (about 5 km): census
centroids sit right on the Tahoe and Colorado River borders. Shapely does the point-in-polygon
test on a prepared geometry (a few microseconds per point).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import Polygon

CALIFORNIA_OUTLINE: tuple[tuple[float, float], ...] = (
    (-124.60, 42.00),  # coast at the Oregon border, at sea
    (-120.00, 42.00),  # Oregon / Nevada / California corner
    (-120.00, 39.00),  # Lake Tahoe: the straight Nevada line ends
    (-114.63, 35.00),  # diagonal Nevada line meets the Colorado River
    (-114.56, 34.80),
    (-114.13, 34.27),  # Colorado River, Parker
    (-114.43, 34.08),
    (-114.53, 33.93),
    (-114.50, 33.60),
    (-114.72, 33.40),
    (-114.70, 33.08),
    (-114.46, 32.85),
    (-114.47, 32.72),  # Yuma: the Mexican border starts
    (-117.12, 32.53),  # Mexican border reaches the Pacific
    (-117.40, 32.45),  # at sea from here on
    (-117.70, 33.00),
    (-118.70, 33.20),  # south of Santa Catalina
    (-119.70, 33.70),
    (-120.70, 34.30),
    (-121.20, 35.20),
    (-122.20, 36.30),
    (-122.40, 36.90),
    (-122.90, 37.60),
    (-123.40, 38.20),
    (-124.10, 39.00),
    (-124.70, 40.30),
    (-124.50, 41.00),
)


TOLERANCE_DEGREES = 0.05


@lru_cache(maxsize=1)
def california() -> Polygon:
    """The outline as a prepared shapely polygon."""
    polygon = Polygon(CALIFORNIA_OUTLINE).buffer(TOLERANCE_DEGREES)
    shapely.prepare(polygon)
    return polygon


def in_california(latitude: float, longitude: float) -> bool:
    """Whether a point lies inside the state outline."""
    return bool(shapely.contains_xy(california(), longitude, latitude))


# --- regions -----------------------------------------------------------------------------------
# Four regions of the state, so that a model's errors and intervals can be checked where people
# live and not only on average: coverage per region, the promotion gate's per-region guard.
# Simple latitude/longitude cuts (not county lines): a block group's region must be cheap to
# compute for a whole frame and stable across versions. Rows of the dataset per region:
# north 2,466, bay_area 4,250, central 2,900, south 11,024.
REGIONS: tuple[str, ...] = ("north", "bay_area", "central", "south")
NORTH_OF = 38.3  # north of Sacramento and Napa
BAY_AREA_SOUTH, BAY_AREA_EAST = 36.9, -121.4  # Santa Cruz to Marin, west of the Diablo Range
SOUTH_OF = 34.6  # Los Angeles, Orange County, San Diego, the Inland Empire


def regions_of(latitude: ArrayLike, longitude: ArrayLike) -> np.ndarray:
    """The region name of each point (an array of strings from ``REGIONS``)."""
    lat, lon = np.asarray(latitude, dtype=float), np.asarray(longitude, dtype=float)
    north = lat >= NORTH_OF
    bay = ~north & (lat >= BAY_AREA_SOUTH) & (lon <= BAY_AREA_EAST)
    south = ~north & ~bay & (lat < SOUTH_OF)
    return np.select([north, bay, south], ["north", "bay_area", "south"], default="central")
