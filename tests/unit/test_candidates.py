"""Candidate pipelines: raw features in, skops round trip with exactly the trusted types we list."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from sklearn.datasets import fetch_california_housing

from housing.candidates import CANDIDATES, build, serving_threads
from housing.features import FEATURE_NAMES
from housing.registry import TRUSTED_TYPES

SMALL_GRIDS = {
    "linear": {"alpha": [1.0]},
    "random_forest": {"n_estimators": [5], "min_samples_leaf": [3]},
    "gradient_boosting": {"max_iter": [20]},
}


@pytest.fixture(scope="module")
def sample():
    X, y = fetch_california_housing(return_X_y=True, as_frame=True)
    return X.iloc[:1500], y.iloc[:1500]


@pytest.mark.parametrize("name", CANDIDATES)
def test_pipeline_round_trips_through_skops_with_trusted_types(name, sample) -> None:
    X, y = sample
    candidate = build(name, SMALL_GRIDS[name], n_neighbors=5, seed=0)
    model = candidate.pipeline.set_params(**{k: v[0] for k, v in candidate.grid.items()})
    model = serving_threads(model.fit(X, y))
    payload = skops.io.dumps(model)
    assert set(skops.io.get_untrusted_types(data=payload)) <= set(TRUSTED_TYPES)
    loaded = skops.io.loads(payload, trusted=TRUSTED_TYPES)
    np.testing.assert_allclose(loaded.predict(X.head(50)), model.predict(X.head(50)))
    assert list(model.feature_names_in_) == list(FEATURE_NAMES)


def test_serving_threads_resets_forest_jobs() -> None:
    pipeline = build("random_forest", {}, n_neighbors=5, seed=0).pipeline
    assert pipeline.get_params()["model__n_jobs"] == -1
    assert serving_threads(pipeline).get_params()["model__n_jobs"] is None


def test_unknown_candidate_or_parameter_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown candidate 'xgboost'"):
        build("xgboost", {}, n_neighbors=5, seed=0)
    with pytest.raises(ValueError, match="'depth' is not a parameter"):
        build("gradient_boosting", {"depth": [3]}, n_neighbors=5, seed=0)
