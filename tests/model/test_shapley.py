"""The Shapley engine: against a brute-force computation and shap's exact explainer, and the
axioms (dummy, symmetry) and direction on the real champion."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from housing.data import load_split
from housing.explain import GROUPS, PLAYERS, ShapleyExplainer, background_sample, for_raw_inputs
from housing.features import FEATURE_NAMES, typical_row


def interacting(X: np.ndarray) -> np.ndarray:  # noqa: N803
    """A model with interactions between every column, so no shortcut gives the right answer."""
    return X[:, 0] * X[:, 1] + np.sin(X[:, 2]) * X[:, 3] + X[:, 3] ** 2 * X[:, 0] + X[:, 4]


def brute_force(predict, house, background, groups) -> np.ndarray:
    """Shapley values by their definition: the mean over every ordering of the players of each
    one's marginal contribution, ``v(S)`` computed row by row over the background."""

    def value(players: frozenset[int]) -> float:
        total = 0.0
        for row in background:
            mixed = row.copy()
            for player in players:
                mixed[groups[player]] = house[groups[player]]
            total += float(predict(mixed[None, :])[0])
        return total / len(background)

    count = len(groups)
    phi = np.zeros(count)
    orders = list(itertools.permutations(range(count)))
    for order in orders:
        before: frozenset[int] = frozenset()
        for player in order:
            phi[player] += value(before | {player}) - value(before)
            before = before | {player}
    return phi / len(orders)


@pytest.fixture(scope="module")
def small_case():
    rng = np.random.default_rng(7)
    return rng.normal(size=(4, 5)), rng.normal(size=5)


@pytest.mark.parametrize("groups", [[[0], [1], [2], [3], [4]], [[0], [1, 2], [3], [4]]])
def test_matches_a_brute_force_computation(small_case, groups) -> None:
    background, house = small_case
    names = [f"p{i}" for i in range(len(groups))]
    result = ShapleyExplainer(background, groups, names).explain(interacting, house)
    expected = brute_force(interacting, house, background, groups)
    np.testing.assert_allclose(list(result.contributions.values()), expected, atol=1e-12)
    assert result.base_value == pytest.approx(interacting(background).mean(), abs=1e-12)
    assert result.prediction == pytest.approx(interacting(house[None, :])[0], abs=1e-12)


@pytest.mark.slow
def test_matches_shaps_exact_explainer(small_case) -> None:
    """shap's Exact explainer, over the raw columns (its Independent masker) and over groups
    (a masker over the players), gives the same values."""
    import shap

    background, house = small_case
    flat = shap.explainers.Exact(interacting, shap.maskers.Independent(background))(house[None])
    ours = ShapleyExplainer(background, [[i] for i in range(5)], "abcde").explain(
        interacting, house
    )
    np.testing.assert_allclose(list(ours.contributions.values()), flat.values[0], atol=1e-10)

    groups = [[0], [1, 2], [3], [4]]

    class PlayerMasker(shap.maskers.Masker):
        """The background with the players in ``mask`` set to the house's columns."""

        shape = (len(background), len(groups))

        def __call__(self, mask, x):
            columns = np.zeros(background.shape[1], dtype=bool)
            for group, keep in zip(groups, mask, strict=True):
                columns[group] = keep
            return (np.where(columns, x, background),)

        def mask_shapes(self, x):
            return [(len(groups),)]

    grouped = shap.explainers.Exact(interacting, PlayerMasker())(house[None])
    ours = ShapleyExplainer(background, groups, "abcd").explain(interacting, house)
    np.testing.assert_allclose(list(ours.contributions.values()), grouped.values[0], atol=1e-10)


def test_symmetric_players_get_equal_values() -> None:
    background = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 0.0]])
    house = np.array([3.0, 3.0, 2.0])

    def symmetric(X: np.ndarray) -> np.ndarray:  # noqa: N803
        return X[:, 0] * X[:, 1] + X[:, 2]

    background[1, 1] = background[1, 0]  # the two players are exchangeable on every row
    result = ShapleyExplainer(background, [[0], [1], [2]], "abc").explain(symmetric, house)
    assert result.contributions["a"] == pytest.approx(result.contributions["b"], abs=1e-12)


@pytest.fixture(scope="module")
def champion(trained_registry: str):
    from housing.registry import load_model

    return load_model("california-housing", "champion", tracking_uri=trained_registry)


@pytest.fixture(scope="module")
def train_split(trained_registry: str) -> pd.DataFrame:
    return load_split(Path(trained_registry.removeprefix("sqlite:///")).parent / "data")[0]


def frame_predict(pipeline):
    def predict(X: np.ndarray) -> np.ndarray:  # noqa: N803
        return pipeline.predict(pd.DataFrame(X, columns=list(FEATURE_NAMES)))

    return predict


def test_an_input_the_model_cannot_see_gets_zero(champion, train_split) -> None:
    """The champion, blind to HouseAge (always shown the same age), gives HouseAge no credit."""
    age = FEATURE_NAMES.index("HouseAge")
    served = frame_predict(champion)

    def blind(X: np.ndarray) -> np.ndarray:  # noqa: N803
        X = X.copy()
        X[:, age] = 30.0
        return served(X)

    explainer = for_raw_inputs(background_sample(train_split).to_numpy())
    house = np.array(list((typical_row() | {"HouseAge": 5.0}).values()))
    result = explainer.explain(blind, house)
    assert result.contributions["HouseAge"] == pytest.approx(0.0, abs=1e-12)  # float rounding
    assert abs(result.contributions["MedInc"]) > 1e-3  # the rest still get theirs
    assert result.base_value + sum(result.contributions.values()) == pytest.approx(
        float(blind(house[None])[0]), abs=1e-9
    )


def test_a_higher_income_raises_its_contribution(champion, train_split) -> None:
    low, high = train_split["MedInc"].quantile([0.1, 0.9])
    explainer = for_raw_inputs(background_sample(train_split).to_numpy())
    predict = frame_predict(champion)
    by_income = {
        income: explainer.explain(predict, list((typical_row() | {"MedInc": income}).values()))
        for income in (low, high)
    }
    assert by_income[high].contributions["MedInc"] > by_income[low].contributions["MedInc"]
    assert by_income[low].contributions["MedInc"] < 0 < by_income[high].contributions["MedInc"]


def test_players_cover_every_input_once() -> None:
    inputs = [name for player in PLAYERS for name in GROUPS[player]]
    assert sorted(inputs) == sorted(FEATURE_NAMES) and len(inputs) == len(FEATURE_NAMES)
    assert GROUPS["location"] == ("Latitude", "Longitude") and len(PLAYERS) == 7
    assert math.comb(7, 3) == sum(1 for m in for_raw_inputs(np.zeros((1, 8))).masks if m.sum() == 3)
