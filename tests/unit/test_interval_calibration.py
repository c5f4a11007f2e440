"""Conformal intervals (housing.intervals): the quantile, calibration, bounds, the artifact."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from housing import intervals
from housing.features import FEATURE_NAMES, FEATURES
from housing.service.compiled import compile_estimator

PARAMS = intervals.IntervalParams(level=0.9, folds=3, sigma_iterations=30)


def houses(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Random houses in the spec's ranges with a noise that grows with MedInc (so a
    normalised interval has something to adapt to)."""
    rng = np.random.default_rng(seed)
    low = np.array([f.min for f in FEATURES])
    high = np.array([min(f.max, f.min + 20) for f in FEATURES])
    X = pd.DataFrame(rng.uniform(low, high, (rows, len(FEATURES))), columns=list(FEATURE_NAMES))
    income = X["MedInc"].to_numpy()  # 0.5-15: values stay inside the target's range
    noise = rng.normal(0, 0.02 + 0.04 * income, rows)
    return X, pd.Series(0.15 * income + 0.5 + noise, name="MedHouseVal")


def test_the_quantile_is_the_finite_sample_conformal_one() -> None:
    """The ⌈(n+1)·level⌉-th smallest score, or (crepes computes (1 - level)·(n+1) in floating
    point: 0.1·200 = 19.999…) one rank above it: never less than coverage needs."""
    rng = np.random.default_rng(1)
    residuals, sigmas = rng.normal(size=199), rng.uniform(0.5, 2, 199)
    scores = np.sort(np.abs(residuals) / sigmas)
    rank = math.ceil((len(scores) + 1) * 0.9)  # the 180th smallest of 199
    assert intervals.conformal_quantile(residuals, sigmas, 0.9) in (scores[rank - 1], scores[rank])
    constant = np.sort(np.abs(residuals))
    assert intervals.conformal_quantile(residuals, None, 0.9) in (
        constant[rank - 1], constant[rank]
    )  # fmt: skip
    assert intervals.conformal_quantile(residuals, sigmas, 0.8) in (scores[159], scores[160])


def test_calibrated_intervals_cover_new_houses_and_adapt_their_width() -> None:
    X, y = houses(3000, 0)
    X_new, y_new = houses(3000, 1)
    pipeline = Pipeline([("model", LinearRegression())])
    calibration = intervals.calibrate(pipeline, X, y, params=PARAMS, seed=0)
    predicted = pipeline.fit(X, y).predict(X_new)
    report = intervals.held_out_report(calibration.intervals, X_new, y_new.to_numpy(), predicted)
    assert 0.88 <= report["interval_coverage"] <= 0.92
    assert 0.88 <= report["interval_const_coverage"] <= 0.92
    assert report["interval_mean_width"] < 0.95 * report["interval_const_mean_width"]
    low, high = calibration.intervals.bounds(predicted, intervals.raw_matrix(X_new))
    rich = X_new["MedInc"].to_numpy() > 10
    assert (high - low)[rich].mean() > 1.5 * (high - low)[~rich].mean()
    assert calibration.seconds > 0


def test_a_forest_lends_its_out_of_bag_predictions() -> None:
    X, y = houses(600, 0)
    pipeline = intervals.with_oob(
        Pipeline([("model", RandomForestRegressor(n_estimators=30, random_state=0))])
    )
    fitted = pipeline.fit(X, y)
    calibration = intervals.calibrate(pipeline, X, y, params=PARAMS, seed=0, fitted=fitted)
    oob = fitted.steps[-1][1].oob_prediction_
    assert np.array_equal(calibration.oof_predictions, oob)
    linear = Pipeline([("model", LinearRegression())])
    assert intervals.with_oob(linear).get_params() == linear.get_params()
    assert intervals.oob_predictions(linear.fit(X, y)) is None


def test_bounds_hold_the_prediction_even_beyond_the_targets_range() -> None:
    X, y = houses(600, 0)
    model = intervals.calibrate(
        Pipeline([("model", LinearRegression())]), X, y, params=PARAMS, seed=0
    ).intervals
    predictions = np.array([-1.0, 0.1, 2.0, 4.99, 7.0])
    low, high = model.bounds(predictions, intervals.raw_matrix(X.head(5)))
    assert (low <= predictions).all() and (predictions <= high).all()
    assert (low[2:4] >= intervals.Y_MIN).all() and (high[:4] <= intervals.Y_MAX).all()
    assert low[1] == 0.1 and high[3] == intervals.Y_MAX  # clipped, never across the prediction
    assert low[0] == -1.0 and high[4] == 7.0  # the prediction itself is the outer bound


def test_the_artifact_round_trips_through_a_run(tmp_path: Path) -> None:
    X, y = houses(600, 0)
    model = intervals.calibrate(
        Pipeline([("model", LinearRegression())]), X, y, params=PARAMS, seed=0
    ).intervals
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as run:
            intervals.log_artifact(model)
        with mlflow.start_run() as bare:
            pass
    finally:
        mlflow.set_tracking_uri(None)
    loaded = intervals.load(run.info.run_id, uri)
    assert loaded is not None
    assert loaded.metadata() == model.metadata()
    matrix = intervals.raw_matrix(X)
    assert np.array_equal(loaded.sigma(matrix), model.sigma(matrix))
    assert intervals.load(bare.info.run_id, uri) is None
    assert intervals.load(None, uri) is None
    assert MlflowClient(tracking_uri=uri).get_run(run.info.run_id).info.status == "FINISHED"


def test_sigma_compiles_exactly_with_treelite() -> None:
    X, y = houses(600, 0)
    model = intervals.calibrate(
        Pipeline([("model", LinearRegression())]), X, y, params=PARAMS, seed=0
    ).intervals
    matrix = intervals.raw_matrix(houses(300, 2)[0])
    predict = compile_estimator(model.sigma_model, matrix)
    assert predict is not None
    np.testing.assert_allclose(predict(matrix), model.sigma_model.predict(matrix), atol=1e-9)
    assert compile_estimator(LinearRegression().fit(matrix, matrix[:, 0]), matrix) is None
