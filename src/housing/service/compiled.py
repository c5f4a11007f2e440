"""A faster ``predict`` for tree-ensemble pipelines: the same trees, evaluated by treelite.

scikit-learn walks a HistGradientBoosting model one tree at a time from Python (~5 µs of
overhead per tree, ~2 ms per call for the 300-tree champion, whatever the batch size).
treelite imports the fitted trees as they are and evaluates them all in one C++ call (GTIL,
no compiler needed), ~0.5 ms. The pipeline's feature steps still run in scikit-learn. A
compiled model is used only if it reproduces the pipeline's own predictions (to ``TOLERANCE``)
on the rows it is checked with; otherwise the service keeps calling the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TOLERANCE = 1e-9
"""Largest difference from the pipeline's predictions a compiled model may show (summing
the same leaf values in another order moves the last bits, ~1e-14)."""

Predict = Callable[[Any], np.ndarray]


def _treelite_model(estimator: Any) -> Any | None:
    """The estimator as a treelite model, or None if treelite cannot import it."""
    try:
        import treelite.sklearn

        return treelite.sklearn.import_model(estimator)
    except Exception as exc:  # not a tree ensemble, or a kind treelite does not import
        log.info("no compiled predict for %s: %s", type(estimator).__name__, exc)
        return None


def compile_pipeline(pipeline: Any, check_rows: Any) -> Predict | None:
    """``predict`` for ``pipeline`` with its final tree ensemble in treelite, if it is exact.

    ``check_rows`` (a DataFrame of raw features) is predicted both ways; the compiled function
    is returned only if every prediction agrees with ``pipeline.predict`` to ``TOLERANCE``.
    """
    steps = getattr(pipeline, "steps", None)
    if not steps:
        return None
    model = _treelite_model(steps[-1][1])
    if model is None:
        return None
    import treelite.gtil

    features = pipeline[:-1]

    def predict(frame: Any) -> np.ndarray:
        matrix = np.asarray(features.transform(frame), dtype=np.float64)
        return treelite.gtil.predict(model, matrix, nthread=1).reshape(-1)

    try:
        expected = np.asarray(pipeline.predict(check_rows), dtype=np.float64).reshape(-1)
        got = predict(check_rows)
    except Exception as exc:  # e.g. a feature count treelite does not expect
        log.warning("compiled predict failed its check: %s", exc)
        return None
    difference = float(np.max(np.abs(expected - got))) if len(expected) else np.inf
    if got.shape != expected.shape or not difference <= TOLERANCE:
        log.warning("compiled predict differs from the pipeline by %g: not used", difference)
        return None
    return predict


def compile_estimator(estimator: Any, check_rows: np.ndarray) -> Predict | None:
    """``predict`` of a bare tree ensemble (fitted on arrays) in treelite, if it is exact on
    ``check_rows``; None otherwise. Used for the interval model's σ(x)."""
    model = _treelite_model(estimator)
    if model is None:
        return None
    import treelite.gtil

    def predict(matrix: Any) -> np.ndarray:
        return treelite.gtil.predict(
            model, np.asarray(matrix, dtype=np.float64), nthread=1
        ).reshape(-1)

    expected = np.asarray(estimator.predict(check_rows), dtype=np.float64).reshape(-1)
    got = predict(check_rows)
    difference = float(np.max(np.abs(expected - got))) if len(expected) else np.inf
    if got.shape != expected.shape or not difference <= TOLERANCE:
        log.warning("compiled estimator differs by %g: not used", difference)
        return None
    return predict
