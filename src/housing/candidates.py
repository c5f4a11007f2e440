"""The three candidate models, each one Pipeline from the raw 8 features to MedHouseVal.

Feature engineering lives inside every pipeline, so it is fitted on training folds only and the
registered model takes exactly what the API receives. The first step selects the spec's columns
by name, which makes the models indifferent to column order and to extra columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from housing.features import FEATURE_NAMES
from housing.transformers import (
    ArrayFeatureUnion,
    NeighbourTargetEncoder,
    RatioFeatures,
    RotatedCoordinates,
)

CANDIDATES: tuple[str, ...] = ("linear", "random_forest", "gradient_boosting")
"""Candidate names, as logged in the ``housing.candidate`` tag and the registry."""


NEIGHBOUR_SCALES: tuple[int, ...] = (5, 30)
"""Neighbourhood sizes averaged besides ``n_neighbors`` (the street and the district)."""


def neighbour_encoder(n_neighbors: int, seed: int) -> NeighbourTargetEncoder:
    """The neighbours' mean target at three scales, distance-weighted, its spread, and their
    value-to-income ratio at this house's income.

    Chosen on five split seeds (README, "Model quality"): the scales, weighting and spread
    lowered the boosted trees' five-split test RMSE by 0.0035, the income pair by 0.0026 more
    (0.0079 for the forest).
    """
    return NeighbourTargetEncoder(
        n_neighbors=n_neighbors,
        random_state=seed,
        scales=NEIGHBOUR_SCALES,
        weighted=True,
        spread=True,
        relative_to="MedInc",
    )


def feature_union(n_neighbors: int, seed: int) -> ArrayFeatureUnion:
    """Raw features + rotated coordinates + ratios + out-of-fold neighbour target statistics.

    An ``ArrayFeatureUnion`` rather than a ``ColumnTransformer``: same columns, same values,
    but ~0.5 ms instead of ~3.4 ms per predict call, which the service pays once per batch.
    """
    return ArrayFeatureUnion(
        [
            ("rotated", RotatedCoordinates()),
            ("ratios", RatioFeatures()),
            ("neighbours", neighbour_encoder(n_neighbors, seed)),
        ],
        columns=list(FEATURE_NAMES),
    )


def linear(n_neighbors: int, seed: int) -> Pipeline:
    """Ridge on standardised features expanded with splines (the only non-tree candidate)."""
    return Pipeline(
        [
            ("features", feature_union(n_neighbors, seed)),
            ("scale", StandardScaler()),
            # Splines let a linear model bend (income saturates, the target is capped at 5).
            ("splines", SplineTransformer(n_knots=5, degree=3, extrapolation="linear")),
            ("model", Ridge(alpha=1.0)),
        ]
    )


def random_forest(n_neighbors: int, seed: int) -> Pipeline:
    """A random forest; ``n_jobs`` is for fitting only (train.py resets it to 1 before logging)."""
    return Pipeline(
        [
            ("features", feature_union(n_neighbors, seed)),
            ("model", RandomForestRegressor(random_state=seed, n_jobs=-1)),
        ]
    )


def gradient_boosting(n_neighbors: int, seed: int) -> Pipeline:
    """Histogram gradient boosting with a fixed number of iterations (no early stopping)."""
    return Pipeline(
        [
            ("features", feature_union(n_neighbors, seed)),
            ("model", HistGradientBoostingRegressor(early_stopping=False, random_state=seed)),
        ]
    )


BUILDERS: Mapping[str, Callable[[int, int], Pipeline]] = {
    "linear": linear,
    "random_forest": random_forest,
    "gradient_boosting": gradient_boosting,
}


SEARCH_JOBS: Mapping[str, int] = {"linear": 1, "random_forest": 1, "gradient_boosting": 2}
"""Processes for each grid search. Training runs with BLAS/OpenMP capped at one thread (see
train.py), so the boosting search gets its parallelism from two processes instead; the forest
uses its own ``n_jobs`` threads, and the linear search is too short to pay for process start-up."""


@dataclass(frozen=True)
class Candidate:
    """A named pipeline, the grid searched over its ``model`` step, and the search's processes."""

    name: str
    pipeline: Pipeline
    grid: dict[str, list[Any]]
    search_jobs: int = 1


def build(
    name: str, grid: Mapping[str, Sequence[Any]], *, n_neighbors: int, seed: int
) -> Candidate:
    """The candidate ``name`` with ``grid`` (keys are parameters of its final estimator)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown candidate {name!r} (known: {', '.join(CANDIDATES)})")
    pipeline = BUILDERS[name](n_neighbors, seed)
    step, estimator = pipeline.steps[-1]
    known = estimator.get_params()
    for key, values in grid.items():
        if key not in known:
            raise ValueError(f"candidate {name}: {key!r} is not a parameter of {estimator!r}")
        for value in values:
            # Check every grid value now rather than minutes into the search. scikit-learn's
            # own parameter constraints do it (``_validate_params`` is what ``fit`` calls).
            try:
                clone(estimator).set_params(**{key: value})._validate_params()
            except ValueError as exc:
                raise ValueError(f"candidate {name}: {exc}") from None
    prefixed = {f"{step}__{key}": list(values) for key, values in grid.items()}
    return Candidate(name, pipeline, prefixed, SEARCH_JOBS[name])


def serving_threads(pipeline: Pipeline) -> Pipeline:
    """Make ``predict`` single-threaded where a parameter controls it (random forest n_jobs).

    HistGradientBoosting has no such parameter: the service caps OpenMP with threadpoolctl.
    """
    params = pipeline.get_params()
    for key in params:
        if key.endswith("n_jobs"):
            pipeline.set_params(**{key: None})
    return pipeline
