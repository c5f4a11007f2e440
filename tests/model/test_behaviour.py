"""Behavioural tests of the registered champion: invariance, direction, minimum functionality.

They load the champion of the `trained_registry` fixture (real pipeline, quick settings) the way
the service does, and probe it with real test rows and edited copies of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import root_mean_squared_error

from housing.data import load_split
from housing.features import BY_NAME, FEATURE_NAMES, TARGET, typical_row
from housing.geo import in_california
from housing.registry import load_model


@pytest.fixture(scope="module")
def champion(trained_registry: str):
    return load_model("california-housing", "champion", tracking_uri=trained_registry)


@pytest.fixture(scope="module")
def test_rows(trained_registry: str) -> pd.DataFrame:
    data_dir = Path(trained_registry.removeprefix("sqlite:///")).parent / "data"
    return load_split(data_dir)[1]


@pytest.fixture(scope="module")
def sample(test_rows: pd.DataFrame) -> pd.DataFrame:
    return test_rows.loc[:, list(FEATURE_NAMES)].sample(300, random_state=0)


# --- invariance ----------------------------------------------------------------------------------


def test_column_order_and_extra_columns_do_not_matter(champion, sample: pd.DataFrame) -> None:
    reordered = sample[list(reversed(FEATURE_NAMES))].assign(note=1.0)
    np.testing.assert_array_equal(champion.predict(reordered), champion.predict(sample))


def test_one_more_resident_barely_changes_the_value(champion, sample: pd.DataFrame) -> None:
    bumped = sample.assign(Population=sample.Population + 1)
    change = np.abs(champion.predict(bumped) - champion.predict(sample))
    # Trees are step functions: a split threshold may sit between the two populations.
    assert np.percentile(change, 95) < 0.02 and change.max() < 0.15  # $2,000 / $15,000


# --- direction -----------------------------------------------------------------------------------


def test_higher_income_means_higher_value(champion, sample: pd.DataFrame) -> None:
    richer = sample.assign(MedInc=np.minimum(sample.MedInc + 3.0, BY_NAME["MedInc"].max))
    delta = champion.predict(richer) - champion.predict(sample)
    assert (delta >= -0.02).mean() >= 0.95
    assert delta.mean() > 0.3  # +$30k income → clearly more than +$30k value on average


def test_the_same_house_is_worth_more_on_the_peninsula_than_in_the_central_valley(
    champion,
) -> None:
    palo_alto, fresno = (37.44, -122.14), (36.74, -119.78)
    assert in_california(*palo_alto) and in_california(*fresno)
    rows = pd.DataFrame([typical_row(), typical_row()])
    rows[["Latitude", "Longitude"]] = [palo_alto, fresno]
    coast, valley = champion.predict(rows)
    assert coast > valley + 1.0  # $100k


# --- minimum functionality -----------------------------------------------------------------------


def test_predictions_stay_in_a_sensible_range(champion, test_rows: pd.DataFrame) -> None:
    predicted = champion.predict(test_rows.loc[:, list(FEATURE_NAMES)])
    assert np.isfinite(predicted).all()
    assert predicted.min() > 0.0 and predicted.max() < 5.5  # the target is capped at 5
    typical = champion.predict(pd.DataFrame([typical_row()]))[0]
    assert 1.0 < typical < 3.5


def test_champion_beats_a_plain_linear_model_on_held_out_rows(
    champion, test_rows: pd.DataFrame
) -> None:
    rmse = root_mean_squared_error(
        test_rows[TARGET.name], champion.predict(test_rows.loc[:, list(FEATURE_NAMES)])
    )
    assert rmse < 0.6  # plain LinearRegression on this split: 0.7456 (shared/data/README.md)
