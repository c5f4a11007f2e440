"""How well the label-free estimate tracks the realized MAE (a benchmark, on the real data).

`housing estimate-calibrate` predicts the held-out split with the champion, unshifted and under
each shift of `housing simulate`, then draws windows of served houses and compares, per window,
the estimate (mean σ(x)) with the realized MAE (mean |actual - prediction|).

The shifts differ in what they do to the labels, which is what the estimate can and cannot see:
``coastal`` keeps a real sub-population with its real values (a covariate shift: the estimate
should follow it); ``income`` and ``age`` change the inputs but keep each house's old value, so
the mapping from inputs to value changed (concept drift, as the model sees it). σ(x) only sees
inputs: it predicts the error of houses *like these*, not of a world whose prices moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from housing.features import FEATURE_NAMES, TARGET
from housing.intervals import Intervals, raw_matrix
from housing.monitoring.shifts import Shift, apply_shift

TOLERANCE = 0.10
"""A window's estimate counts as right within ±10% of its realized MAE."""


@dataclass(frozen=True)
class EstimateCell:
    """One (shift, window size) cell over ``trials`` windows."""

    shift: str
    rows: int
    trials: int
    estimated_mae: float
    realized_mae: float
    within_tolerance: float
    """Share of windows whose estimate was within ±``TOLERANCE`` of their realized MAE."""
    median_relative_error: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _errors(pipeline: Any, intervals: Intervals, pool: pd.DataFrame) -> tuple[np.ndarray, ...]:
    features = pool.loc[:, list(FEATURE_NAMES)]
    predicted = np.asarray(pipeline.predict(features), dtype=np.float64)
    actual = pool[TARGET.name].to_numpy(dtype=np.float64)
    return np.abs(actual - predicted), intervals.sigma(raw_matrix(features))


def calibrate_estimate(
    pipeline: Any,
    intervals: Intervals,
    held_out: pd.DataFrame,
    sizes: Sequence[int],
    trials: int,
    seed: int = 0,
) -> list[EstimateCell]:
    """``trials`` windows per shift and size (drawn with replacement only from a short pool)."""
    rng = np.random.default_rng(seed)
    cells = []
    for shift in Shift:
        errors, sigmas = _errors(pipeline, intervals, apply_shift(held_out, shift))
        for size in sizes:
            estimated, realized = [], []
            for _ in range(trials):
                rows = rng.choice(len(errors), size, replace=len(errors) < size)
                estimated.append(float(sigmas[rows].mean()))
                realized.append(float(errors[rows].mean()))
            est, real = np.array(estimated), np.array(realized)
            relative = np.abs(est / real - 1.0)
            cells.append(
                EstimateCell(
                    shift=shift.value,
                    rows=size,
                    trials=trials,
                    estimated_mae=float(est.mean()),
                    realized_mae=float(real.mean()),
                    within_tolerance=float(np.mean(relative <= TOLERANCE)),
                    median_relative_error=float(np.median(relative)),
                )
            )
    return cells
