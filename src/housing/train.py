"""The training stage: search, fit and test three candidates, log them to MLflow, gate the champion.

One parent run per ``housing train`` holds the comparison; each candidate gets a child run with
its parameters, CV, validation and test metrics, timings, plots, importances and the model
itself. The best candidate by *cross-validated* RMSE on the fitting rows is registered; the
promotion gate (``housing.gate``) compares it with the champion on the validation rows only.
The test split is predicted once per candidate for the reported numbers and decides nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from housing.candidates import CANDIDATES, build, serving_threads
from housing.data import load_section
from housing.evaluation import (
    frame_hash,
    permutation_table,
    regression_metrics,
    single_row_latency,
)
from housing.explain import log_background
from housing.features import FEATURE_NAMES, TARGET
from housing.fileio import atomic_write_json
from housing.gate import GateParams, Scored, Verdict, judge
from housing import intervals
from housing.intervals import IntervalParams
from housing.settings import Settings
from housing.tracking import check_tracking, experiment_id, global_tracking_uri

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")
"""Pinned into every logged model (explicit, so MLflow does not spawn a process to infer them)."""


class TrainParams(BaseModel):
    """The ``train:`` section of params.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(42, ge=0)
    cv_folds: int = Field(3, ge=2)
    n_neighbors: int = Field(10, ge=1)
    importance_rows: int = Field(2000, ge=10)
    latency_repeats: int = Field(50, ge=1)
    candidates: dict[str, dict[str, list[Any]]]
    """Per candidate, the grid over its final estimator's parameters (one value = no search)."""
    gate: GateParams = GateParams()
    """The promotion gate's level, resamples and guard margins (``housing.gate``)."""
    intervals: IntervalParams = IntervalParams()

    @field_validator("candidates")
    @classmethod
    def _known(cls, value: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
        unknown = sorted(set(value) - set(CANDIDATES))
        if unknown:
            raise ValueError(f"unknown candidate(s) {unknown}; known: {list(CANDIDATES)}")
        if not value:
            raise ValueError("at least one candidate is needed")
        for name, grid in value.items():
            empty = [key for key, values in grid.items() if not values]
            if empty:
                raise ValueError(f"{name}: empty value list for {empty}")
            build(name, grid, n_neighbors=1, seed=0)  # unknown or invalid parameters
        return value


def load_params(path: Path) -> TrainParams:
    """Read the ``train:`` section of a params file."""
    return load_section(path, "train", TrainParams)


# --- the stage ---------------------------------------------------------------------------------


@dataclass
class CandidateResult:
    """What one child run measured."""

    model: str
    run_id: str
    model_uri: str
    rmse: float
    mae: float
    r2: float
    mape: float
    cv_rmse: float
    fit_seconds: float
    search_seconds: float
    predict_latency_ms: float
    best_params: dict[str, Any] = field(default_factory=dict)
    val_rmse: float = float("nan")
    validation_predictions: np.ndarray | None = field(default=None, repr=False)
    """Its predictions of the validation rows, for the gate (not logged, not summarised)."""
    intervals: dict[str, float] = field(default_factory=dict)
    """Test coverage and width of its intervals, and calibration seconds (housing.intervals)."""

    def summary(self) -> dict[str, Any]:
        keep = (
            "model",
            "rmse",
            "mae",
            "r2",
            "cv_rmse",
            "val_rmse",
            "fit_seconds",
            "search_seconds",
        )
        interval_keys = ("interval_coverage", "interval_mean_width", "calibration_seconds")
        return (
            {key: _rounded(getattr(self, key)) for key in keep}
            | {"predict_latency_ms": round(self.predict_latency_ms, 3)}
            | {key: _rounded(self.intervals[key]) for key in interval_keys if key in self.intervals}
        )


@dataclass
class TrainResult:
    """The outcome ``housing train --json`` prints."""

    champion: dict[str, Any]
    promoted: bool
    candidates: list[CandidateResult]
    seconds: float
    registered: dict[str, Any] | None = None
    reason: str = ""
    run_id: str | None = None
    skipped: bool = False
    gate: dict[str, Any] | None = None
    """``refused_by`` (the rules that refused the candidate), ``pending_approval``, ``checks``."""

    def summary(self) -> dict[str, Any]:
        out = {
            "champion": self.champion,
            "promoted": self.promoted,
            "candidates": [c.summary() for c in self.candidates],
            "seconds": round(self.seconds, 2),
        }
        extra = {
            "registered": self.registered,
            "reason": self.reason,
            "run_id": self.run_id,
            "gate": self.gate,
        }
        return (
            out
            | {k: v for k, v in extra.items() if v}
            | ({"skipped": True} if self.skipped else {})
        )


@dataclass(frozen=True)
class ExtraData:
    """Labelled rows appended to the training split (retraining: feedback, uploaded batches),
    with the params, tags and text artifacts that record where they came from."""

    frame: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    """Artifact path -> text, logged on the parent run."""


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def champion_summary(version) -> dict[str, Any]:
    """The JSON's ``champion`` object, from a registered version's tags."""
    tags = version.tags
    return {
        "version": int(version.version),
        "model": tags.get("candidate", "unknown"),
        "rmse": _rounded(float(tags.get("test_rmse", "nan"))),
        "r2": _rounded(float(tags.get("test_r2", "nan"))),
    }


def _log_candidate(
    name: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    params: TrainParams,
):
    """Search, fit, validate, test and log one candidate inside the active child run."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.model_selection import GridSearchCV, KFold

    from housing import plots
    from housing.registry import TRUSTED_TYPES

    X, y = train.loc[:, list(FEATURE_NAMES)], train[TARGET.name]
    X_test, y_test = test.loc[:, list(FEATURE_NAMES)], test[TARGET.name].to_numpy()
    candidate = build(
        name, params.candidates[name], n_neighbors=params.n_neighbors, seed=params.seed
    )
    intervals.with_oob(candidate.pipeline)
    search = GridSearchCV(
        candidate.pipeline,
        candidate.grid,
        cv=KFold(params.cv_folds, shuffle=True, random_state=params.seed),
        scoring="neg_root_mean_squared_error",
        n_jobs=candidate.search_jobs,
        error_score="raise",
    )
    started = time.perf_counter()
    search.fit(X, y)
    search_seconds = time.perf_counter() - started
    model = serving_threads(search.best_estimator_)
    best = {key.removeprefix("model__"): value for key, value in search.best_params_.items()}
    cv_rmse = float(-search.best_score_)
    cv_std = float(search.cv_results_["std_test_score"][search.best_index_])

    val_predicted = model.predict(validation.loc[:, list(FEATURE_NAMES)])
    val_rmse = regression_metrics(validation[TARGET.name].to_numpy(), val_predicted)["rmse"]
    predicted = model.predict(X_test)  # the one use of the test split for this candidate
    metrics = regression_metrics(y_test, predicted)
    p50, p95 = single_row_latency(model, X_test.iloc[[0]], params.latency_repeats)
    importance = permutation_table(model, X_test, test[TARGET.name], params.importance_rows, 0)
    interval_metrics = _calibrate(
        candidate.pipeline, search, (X, y), (X_test, y_test, predicted), params
    )

    mlflow.log_params({"candidate": name, "n_neighbors": params.n_neighbors, **best})
    mlflow.log_dict(
        {"grid": candidate.grid, "cv_folds": params.cv_folds, "results": _cv_table(search)},
        "search.json",
    )
    mlflow.log_metrics(
        {f"test_{key}": value for key, value in metrics.items()}
        | {
            "cv_rmse": cv_rmse,
            "cv_rmse_std": cv_std,
            "val_rmse": val_rmse,
            "fit_seconds": float(search.refit_time_),
            "search_seconds": search_seconds,
            "predict_latency_ms": p50,
            "predict_latency_p95_ms": p95,
        }
    )
    mlflow.log_figure(plots.predicted_vs_actual(y_test, predicted, name), "plots/predicted.png")
    mlflow.log_figure(plots.residuals(y_test, predicted, name), "plots/residuals.png")
    mlflow.log_figure(plots.importances(importance, name), "plots/importance.png")
    mlflow.log_text(importance.to_csv(index=False), "feature_importance.csv")
    mlflow.log_metrics(interval_metrics)
    log_background(train)  # explanations of this model, if registered, use this sample
    example = X.head(3)
    info = mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        pip_requirements=[f"{dist}=={installed_version(dist)}" for dist in REQUIREMENTS],
    )
    run_id = mlflow.active_run().info.run_id
    return CandidateResult(
        name,
        run_id,
        info.model_uri,
        **metrics,
        cv_rmse=cv_rmse,
        fit_seconds=float(search.refit_time_),
        search_seconds=search_seconds,
        predict_latency_ms=p50,
        best_params=best,
        val_rmse=val_rmse,
        validation_predictions=val_predicted,
        intervals=interval_metrics,
    )


def _calibrate(pipeline, search, training, tested, params: TrainParams) -> dict[str, float]:
    """Calibrate the candidate's intervals on the training rows, log the artifact, and return
    their test report (housing.intervals). ``training`` is (X, y); ``tested`` is (X_test,
    y_test, predicted): the test split is only scored."""
    from sklearn.base import clone

    X, y = training
    X_test, y_test, predicted = tested
    chosen = clone(pipeline).set_params(**search.best_params_)
    calibration = intervals.calibrate(
        chosen, X, y, params=params.intervals, seed=params.seed, fitted=search.best_estimator_
    )
    intervals.log_artifact(calibration.intervals)
    report = intervals.held_out_report(calibration.intervals, X_test, y_test, predicted)
    return report | {"calibration_seconds": calibration.seconds}


def _cv_table(search) -> list[dict[str, Any]]:
    results = search.cv_results_
    return [
        {"params": params, "cv_rmse": float(-mean), "fit_seconds": float(fit)}
        for params, mean, fit in zip(
            results["params"], results["mean_test_score"], results["mean_fit_time"]
        )
    ]


def comparison_frame(results: list[CandidateResult]) -> pd.DataFrame:
    """One row per candidate, best cross-validated first (the parent run's comparison table)."""
    skip = ("best_params", "validation_predictions", "intervals")
    rows = [{k: v for k, v in asdict(r).items() if k not in skip} for r in results]
    return pd.DataFrame(rows).sort_values("cv_rmse", ignore_index=True)


def validation_judge(
    candidate: np.ndarray,
    candidate_cv: float,
    validation: pd.DataFrame,
    params: GateParams,
    champion_predict,
):
    """The gate's judge for ``registry.gate``: the candidate's validation predictions against
    ``champion_predict(champion)`` on the same rows, and the CV RMSEs. Nothing here sees the
    test split."""

    def decide(champion) -> Verdict:
        features = validation.loc[:, list(FEATURE_NAMES)]
        scored = Scored(
            actual=validation[TARGET.name].to_numpy(),
            candidate=np.asarray(candidate, dtype=float),
            champion=np.asarray(champion_predict(champion, features), dtype=float),
            latitude=validation["Latitude"].to_numpy(),
            longitude=validation["Longitude"].to_numpy(),
            income=validation["MedInc"].to_numpy(),
        )
        tag = champion.tags.get("cv_rmse")
        return judge(scored, candidate_cv, None if tag is None else float(tag), params)

    return decide


def _parent_params(
    params: TrainParams, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame
) -> dict:
    return {
        "seed": params.seed,
        "cv_folds": params.cv_folds,
        "n_neighbors": params.n_neighbors,
        "train_rows": len(train),
        "validation_rows": len(validation),
        "test_rows": len(test),
        "validation_data_hash": frame_hash(validation),
        "gate_confidence": params.gate.confidence,
        "gate_resamples": params.gate.resamples,
        "test_data_hash": frame_hash(test),
        "train_data_hash": frame_hash(train),
        "candidates": ",".join(params.candidates),
    }


def _run_candidates(params: TrainParams, splits, experiment: str) -> list[CandidateResult]:
    """One child run per candidate under the active parent run."""
    import mlflow
    from threadpoolctl import threadpool_limits

    results = []
    for name in params.candidates:
        tags = {"housing.role": "candidate", "housing.candidate": name}
        # One BLAS/OpenMP thread: with two threads on two busy cores, OpenMP's spinning barriers
        # made a boosting fit 5-10x slower here (0.7 s -> 5 s). Parallelism comes from the
        # forest's threads and the boosting search's processes instead.
        with (
            threadpool_limits(limits=1),
            mlflow.start_run(experiment_id=experiment, run_name=name, nested=True, tags=tags),
        ):
            results.append(
                _log_candidate(name, splits.train, splits.validation, splits.test, params)
            )
        log.info("%s: test RMSE %.4f", name, results[-1].rmse)
    return results


def _champion_predict(name: str, tracking_uri: str):
    """Predictions of a registered version (the champion, for the gate)."""
    from housing import registry

    def predict(version, features: pd.DataFrame) -> np.ndarray:
        model = registry.load_model(name, version.version, tracking_uri=tracking_uri)
        return model.predict(features)

    return predict


def _register_best(
    client,
    settings: Settings,
    best: CandidateResult,
    splits,
    params: TrainParams,
    provenance: dict[str, str],
    auto_promote: bool,
):
    """Register the best candidate and run the promotion gate; returns (version, decision)."""
    from housing import registry

    name, uri = settings.model_name, settings.mlflow_tracking_uri
    tags = {
        "candidate": best.model,
        "test_rmse": best.rmse,
        "test_mae": best.mae,
        "test_r2": best.r2,
        "cv_rmse": best.cv_rmse,
        "val_rmse": best.val_rmse,
        "test_data_hash": frame_hash(splits.test),
        "validation_data_hash": frame_hash(splits.validation),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **provenance,
    }
    version = registry.register(client, name, best.model_uri, best.run_id, tags)
    decide = validation_judge(
        best.validation_predictions,
        best.cv_rmse,
        splits.validation,
        params.gate,
        _champion_predict(name, uri),
    )
    decision = registry.gate(client, name, version, decide, auto_promote=auto_promote)
    log.info("registered %s v%s: %s", name, version.version, decision.reason)
    return version, decision


def _gate_summary(decision) -> dict[str, Any]:
    return {
        "refused_by": list(decision.refused_by),
        "pending_approval": decision.pending,
        "checks": decision.checks,
    }


def train(
    settings: Settings,
    params: TrainParams,
    *,
    if_no_champion: bool = False,
    extra: ExtraData | None = None,
    auto_promote: bool = True,
) -> TrainResult:
    """Run the whole stage; see the module docstring. Raises DataNotFoundError, ParamsError,
    TrackingUnavailableError or RegistryError for states the user can fix.

    ``extra`` rows join the fitting rows only (retraining): the validation split, and so the
    gate, and the test split stay the same; the parent run records the extra data's provenance.
    Without ``auto_promote`` a candidate that passes the gate waits for an admin's approval.
    """
    import mlflow
    from mlflow import MlflowClient

    from housing import registry
    from housing.data import Splits, load_splits

    started = time.perf_counter()
    uri, name = settings.mlflow_tracking_uri, settings.model_name
    splits = load_splits(settings.data_dir)
    if extra is not None:
        extra_rows = extra.frame.loc[:, list(splits.train.columns)].astype(float)
        fitting = pd.concat([splits.train, extra_rows], ignore_index=True)
        splits = Splits(fitting, splits.validation, splits.test)
    check_tracking(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    current = registry.champion(client, name)
    if if_no_champion and current is not None:
        log.info("champion v%s exists; not training (--if-no-champion)", current.version)
        seconds = time.perf_counter() - started
        return TrainResult(champion_summary(current), False, [], seconds, skipped=True)

    experiment = experiment_id(client, settings.experiment_name, uri)
    run_name = f"{'retrain' if extra else 'train'}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    with (
        global_tracking_uri(uri),
        mlflow.start_run(
            experiment_id=experiment, run_name=run_name, tags={"housing.role": "training"}
        ) as parent,
    ):
        mlflow.log_params(_parent_params(params, splits.train, splits.validation, splits.test))
        if extra is not None:
            mlflow.log_params(extra.params)
            mlflow.set_tags(extra.tags)
            for path, text in extra.texts.items():
                mlflow.log_text(text, path)
        results = _run_candidates(params, splits, experiment)
        table = comparison_frame(results)
        mlflow.log_table(table, "comparison.json")
        mlflow.log_text(table.to_csv(index=False), "comparison.csv")
        best = min(results, key=lambda r: r.cv_rmse)
        provenance = {
            "train_data_hash": frame_hash(splits.train),
            "parent_run_id": parent.info.run_id,
        }
        version, decision = _register_best(
            client, settings, best, splits, params, provenance, auto_promote
        )
        champion = client.get_model_version(name, decision.champion.version)
        mlflow.set_tags(
            {
                "housing.best_candidate": best.model,
                "housing.registered_version": version.version,
                "housing.promoted": str(decision.promoted).lower(),
                "housing.pending_approval": str(decision.pending).lower(),
                "housing.refused_by": ",".join(decision.refused_by) or "none",
                "housing.champion_version": champion.version,
            }
        )
        mlflow.log_metrics(
            {
                "best_cv_rmse": best.cv_rmse,
                "best_val_rmse": best.val_rmse,
                "best_test_rmse": best.rmse,
            }
        )

    return TrainResult(
        champion=champion_summary(champion),
        promoted=decision.promoted,
        candidates=results,
        seconds=time.perf_counter() - started,
        registered={"version": int(version.version), "model": best.model},
        reason=decision.reason,
        run_id=parent.info.run_id,
        gate=_gate_summary(decision) if decision.checks else None,
    )


def write_report(path: Path, result: TrainResult) -> None:
    """The JSON summary as a DVC metrics file (atomic)."""
    atomic_write_json(Path(path), result.summary())
