"""Prediction intervals: how wrong the model is likely to be at each house, and a range that
holds the true value for the chosen share of houses.

At training (training split only) the whole candidate pipeline is predicted out-of-fold, a
small *difficulty model* σ(x) is fitted on the absolute out-of-fold residuals from the raw 8
features, and crepes' normalised ``ConformalRegressor`` finds the quantile ``q`` of
``|y - ŷ| / σ(x)`` with the finite-sample correction (the ⌈(n+1)·level⌉-th smallest score), so
``ŷ ± q·σ(x)`` covers ``level`` of exchangeable houses. crepes is used for the quantile only:
serving needs q and σ, not crepes. σ(x) fitted on |residual| estimates the expected absolute
error at x, which is why its mean over served inputs estimates the live MAE without labels
(``housing.monitoring.estimate``).

The σ model and q travel with the candidate's run as one artifact folder, ``intervals/``, so the
registered version carries them; the service loads it with the champion (``load``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from housing.features import FEATURE_NAMES

log = logging.getLogger(__name__)

ARTIFACT = "intervals"
"""Artifact folder of a candidate's run: ``sigma.skops`` and ``interval.json``."""
SIGMA_FILE, META_FILE = "sigma.skops", "interval.json"
Y_MIN, Y_MAX = 0.14999, 5.00001
"""The target's range in the census data: an interval never reaches beyond it."""
SIGMA_FLOOR_QUANTILE = 0.01
"""σ is floored at this quantile of its out-of-fold values: a near-zero σ would make one score
(|residual| / σ) explode and an interval collapse to a point."""


class IntervalParams(BaseModel):
    """The ``train.intervals:`` section of params.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: float = Field(0.90, gt=0.5, lt=1.0)
    folds: int = Field(5, ge=2, le=20)
    """Folds of the out-of-fold predictions. More folds fit each on more rows, so the residuals
    are closer to the final model's (3 folds over-covered by ~0.01 on the test split)."""
    sigma_iterations: int = Field(60, ge=5, le=1000)
    """Boosting iterations of the difficulty model (small: it runs on every request)."""


def with_oob(pipeline: Any) -> Any:
    """Ask a bagging final step for out-of-bag predictions (``oob_score``), which calibration
    then reuses instead of refitting the forest per fold: ~0.3 s in the fit against ~2 full
    fits. Other pipelines are returned unchanged."""
    if "model__oob_score" in pipeline.get_params():
        pipeline.set_params(model__oob_score=True)
    return pipeline


def oob_predictions(fitted: Any) -> np.ndarray | None:
    """A fitted pipeline's out-of-bag predictions of its training rows, if it has them.

    The pipeline's features for the training rows are themselves out-of-fold (the neighbour
    encoder), so these are out-of-sample predictions of the whole pipeline.
    """
    steps = getattr(fitted, "steps", None)
    oob = getattr(steps[-1][1], "oob_prediction_", None) if steps else None
    return None if oob is None else np.asarray(oob, dtype=np.float64).reshape(-1)


def sigma_estimator(iterations: int, seed: int) -> Any:
    """The difficulty model: a small boosting model of |residual| on the raw features.

    Squared loss on |residual| fits its conditional *mean*, the expected absolute error at x.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=iterations,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        early_stopping=False,
        random_state=seed,
    )


@dataclass(frozen=True)
class Intervals:
    """A fitted interval model: ``prediction ± q·σ(x)``, clipped to the target's range."""

    sigma_model: Any
    q: float
    level: float
    floor: float
    q_constant: float = float("nan")
    """The constant-width split-conformal half-width on the same residuals (a baseline)."""
    compiled: Callable[[np.ndarray], np.ndarray] | None = None

    def sigma(self, features: np.ndarray) -> np.ndarray:
        """σ(x) of an (n, 8) array of raw features in spec order."""
        matrix = np.asarray(features, dtype=np.float64)
        if self.compiled is not None:
            raw = self.compiled(matrix)
        else:
            raw = np.asarray(self.sigma_model.predict(matrix), dtype=np.float64).reshape(-1)
        return np.maximum(raw, self.floor)

    def bounds(
        self, predictions: np.ndarray, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) per house; always ``low <= prediction <= high``, even for a prediction
        outside the target's range (the clip never crosses the prediction)."""
        half = self.q * self.sigma(features)
        low = np.minimum(np.maximum(predictions - half, Y_MIN), predictions)
        high = np.maximum(np.minimum(predictions + half, Y_MAX), predictions)
        return low, high

    def metadata(self) -> dict[str, float]:
        return {
            "level": self.level,
            "q": self.q,
            "floor": self.floor,
            "q_constant": self.q_constant,
        }


@dataclass(frozen=True)
class Calibration:
    """What calibration produced on the training split."""

    intervals: Intervals
    oof_predictions: np.ndarray
    oof_sigmas: np.ndarray
    seconds: float


def raw_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The raw 8 features in spec order as a float array (what σ is fitted and served on)."""
    return frame.loc[:, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)


def conformal_quantile(residuals: np.ndarray, sigmas: np.ndarray | None, level: float) -> float:
    """crepes' (normalised when ``sigmas`` is given) conformal quantile at ``level``: the
    ⌈(n+1)·level⌉-th smallest score, or one rank above it where crepes' floating-point
    (1 - level)·(n+1) rounds down (level 0.9): never less than the coverage needs."""
    from crepes import ConformalRegressor

    regressor = ConformalRegressor().fit(residuals, sigmas=sigmas)
    # The half-width at σ = 1 (or of the constant interval) is the quantile itself.
    unit = None if sigmas is None else np.ones(1)
    interval = regressor.predict_int(np.zeros(1), sigmas=unit, confidence=level)
    return float(interval[0, 1])


def calibrate(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    params: IntervalParams,
    seed: int,
    fitted: Any = None,
) -> Calibration:
    """Calibrate intervals for ``pipeline`` (the candidate with its chosen parameters, not
    fitted) on training rows only; see the module docstring. ``fitted`` (the same pipeline
    fitted on ``X``) lends its out-of-bag predictions when it has them."""
    from sklearn.model_selection import KFold, cross_val_predict

    started = time.perf_counter()
    cv = KFold(params.folds, shuffle=True, random_state=seed)
    actual = y.to_numpy(dtype=np.float64)
    oof = oob_predictions(fitted)
    if oof is None or len(oof) != len(actual) or not np.isfinite(oof).all():
        # n_jobs=1: training caps threads at one, and new processes cost more than they save
        oof = cross_val_predict(pipeline, X, y, cv=cv, n_jobs=1)
    residuals = actual - oof
    matrix = raw_matrix(X)
    estimator = sigma_estimator(params.sigma_iterations, seed)
    oof_sigma = cross_val_predict(estimator, matrix, np.abs(residuals), cv=cv)
    floor = float(max(np.quantile(oof_sigma, SIGMA_FLOOR_QUANTILE), 1e-6))
    oof_sigma = np.maximum(oof_sigma, floor)
    q = conformal_quantile(residuals, oof_sigma, params.level)
    q_constant = conformal_quantile(residuals, None, params.level)
    sigma_model = estimator.fit(matrix, np.abs(residuals))
    intervals = Intervals(sigma_model, q, params.level, floor, q_constant)
    return Calibration(intervals, oof, oof_sigma, time.perf_counter() - started)


# --- the test split's report (per candidate, logged to MLflow) --------------------------------


def _coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((actual >= low) & (actual <= high))) if len(actual) else float("nan")


def held_out_report(
    intervals: Intervals, X_test: pd.DataFrame, y_test: np.ndarray, predicted: np.ndarray
) -> dict[str, float]:
    """Coverage and width on the test split, per MedInc quintile and per region, beside the
    constant-width split-conformal baseline (``interval_const_*``)."""
    from housing.geo import REGIONS, regions_of

    actual = np.asarray(y_test, dtype=np.float64)
    low, high = intervals.bounds(predicted, raw_matrix(X_test))
    width = high - low
    const_low = np.clip(predicted - intervals.q_constant, Y_MIN, Y_MAX)
    const_high = np.clip(predicted + intervals.q_constant, Y_MIN, Y_MAX)
    sigma = intervals.sigma(raw_matrix(X_test))
    out = {
        "interval_level": intervals.level,
        "interval_q": intervals.q,
        "interval_coverage": _coverage(actual, low, high),
        "interval_mean_width": float(np.mean(width)),
        "interval_median_width": float(np.median(width)),
        "interval_const_coverage": _coverage(actual, const_low, const_high),
        "interval_const_mean_width": float(np.mean(const_high - const_low)),
        "estimated_mae": float(np.mean(sigma)),
    }
    quintile = pd.qcut(X_test["MedInc"].to_numpy(), 5, labels=False)
    for index in range(5):
        mask = quintile == index
        out[f"interval_coverage_medinc_q{index + 1}"] = _coverage(
            actual[mask], low[mask], high[mask]
        )
    regions = regions_of(X_test["Latitude"], X_test["Longitude"])
    for region in REGIONS:
        mask = regions == region
        out[f"interval_coverage_region_{region}"] = _coverage(actual[mask], low[mask], high[mask])
    return out


# --- the artifact ------------------------------------------------------------------------------


def log_artifact(intervals: Intervals) -> None:
    """Log ``intervals/`` to the active MLflow run (the candidate's)."""
    import mlflow
    import skops.io

    with tempfile.TemporaryDirectory(prefix="housing-intervals-") as tmp:
        folder = Path(tmp)
        skops.io.dump(intervals.sigma_model, folder / SIGMA_FILE)
        (folder / META_FILE).write_text(json.dumps(intervals.metadata(), indent=2))
        mlflow.log_artifacts(str(folder), ARTIFACT)


def read_folder(folder: Path) -> Intervals:
    """Intervals from a downloaded ``intervals/`` folder (skops, trusting only our types)."""
    import skops.io

    from housing.registry import TRUSTED_TYPES

    meta = json.loads((folder / META_FILE).read_text())
    sigma_model = skops.io.load(folder / SIGMA_FILE, trusted=TRUSTED_TYPES)
    return Intervals(
        sigma_model,
        q=float(meta["q"]),
        level=float(meta["level"]),
        floor=float(meta["floor"]),
        q_constant=float(meta.get("q_constant", "nan")),
    )


def load(run_id: str | None, tracking_uri: str) -> Intervals | None:
    """The intervals logged with ``run_id``, or None when that run has none (a version
    trained before intervals existed serves without them)."""
    if not run_id:
        return None
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    names = {Path(item.path).name for item in client.list_artifacts(run_id, ARTIFACT)}
    if not {SIGMA_FILE, META_FILE} <= names:
        log.warning("run %s has no %s/ artifact: serving without intervals", run_id, ARTIFACT)
        return None
    from housing.tracking import mlflow_env

    quiet = mlflow_env(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    with quiet, tempfile.TemporaryDirectory(prefix="housing-intervals-") as tmp:
        local = client.download_artifacts(run_id, ARTIFACT, tmp)
        return read_folder(Path(local))
