"""The compiled (treelite) predict serves only when it reproduces the pipeline's predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from housing.candidates import gradient_boosting, linear, random_forest
from housing.features import FEATURE_NAMES
from housing.service.compiled import TOLERANCE, compile_pipeline
from housing.service.model import check_rows


@pytest.fixture(scope="module")
def houses() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Random houses within the spec's ranges, a target that depends on them, held-out rows."""
    rows = pd.DataFrame(check_rows(400, seed=3), columns=list(FEATURE_NAMES))
    y = np.log1p(rows["MedInc"]) + 0.1 * rows["Latitude"] - 0.05 * rows["HouseAge"] / 10
    return rows.iloc[:300], y.iloc[:300].to_numpy(), rows.iloc[300:]


def _fitted(builder, houses):
    train, y, _ = houses
    pipeline = builder(n_neighbors=5, seed=0)
    if builder is gradient_boosting:
        pipeline.set_params(model__max_iter=40)
    if builder is random_forest:
        pipeline.set_params(model__n_estimators=20, model__n_jobs=1)
    return pipeline.fit(train, y)


@pytest.mark.parametrize("builder", [gradient_boosting, random_forest])
def test_compiled_tree_ensembles_match_the_pipeline(builder, houses) -> None:
    pipeline = _fitted(builder, houses)
    check = pd.DataFrame(check_rows(), columns=list(FEATURE_NAMES))
    compiled = compile_pipeline(pipeline, check)
    assert compiled is not None
    held_out = houses[2]
    np.testing.assert_allclose(
        compiled(held_out), pipeline.predict(held_out), rtol=0, atol=TOLERANCE
    )


def test_pipelines_treelite_cannot_import_keep_scikit_learn(houses) -> None:
    assert compile_pipeline(_fitted(linear, houses), houses[2]) is None


def test_a_compiled_model_that_disagrees_is_refused(houses) -> None:
    pipeline = _fitted(gradient_boosting, houses)

    class Shifted:
        """The same pipeline, except that its own predictions are off by 1e-6."""

        steps = pipeline.steps

        def __getitem__(self, item):
            return pipeline[item]

        def predict(self, frame):
            return pipeline.predict(frame) + 1e-6

    assert compile_pipeline(Shifted(), houses[2]) is None
