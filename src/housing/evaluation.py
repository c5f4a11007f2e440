"""Measuring a fitted model: test metrics, single-row latency, permutation importance.

Pure functions of a model and data; train.py decides when they run and logs what they return.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pandas as pd


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE (a fraction: 0.15 means 15 %)."""
    from sklearn.metrics import (
        mean_absolute_error,
        mean_absolute_percentage_error,
        r2_score,
        root_mean_squared_error,
    )

    return {
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)),
        "mape": float(mean_absolute_percentage_error(actual, predicted)),
    }


def single_row_latency(model, row: pd.DataFrame, repeats: int) -> tuple[float, float]:
    """(p50, p95) milliseconds of ``predict`` on one row with one thread, as when served."""
    from threadpoolctl import threadpool_limits

    timings = []
    with threadpool_limits(limits=1):
        for _ in range(3):
            model.predict(row)
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict(row)
            timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


def permutation_table(model, X: pd.DataFrame, y: pd.Series, rows: int, seed: int) -> pd.DataFrame:
    """Permutation importance of the raw inputs on a subsample (cheap, model-agnostic)."""
    from sklearn.inspection import permutation_importance

    sample = X.sample(min(rows, len(X)), random_state=seed)
    result = permutation_importance(
        model,
        sample,
        y.loc[sample.index],
        scoring="neg_root_mean_squared_error",
        n_repeats=3,
        random_state=seed,
        n_jobs=1,
    )
    return pd.DataFrame(
        {
            "feature": list(sample.columns),
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    ).sort_values("importance_mean", ascending=False, ignore_index=True)


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a split, so the gate knows whether two test RMSEs are comparable."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
