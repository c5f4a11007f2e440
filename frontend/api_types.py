"""The API's answers as the UI reads them.

These mirror the response models in ``housing.service.schemas`` field for field, but only the
fields the UI uses, and extra fields are ignored: the UI never imports the service (it runs
against any compatible API over HTTP) and keeps working when the API adds a field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

TARGET_DOLLARS = 100_000.0
"""$ per unit of MedHouseVal; the API states dollars itself, this converts logged values."""


class Loose(BaseModel):
    """A response body: unknown fields are ignored, not rejected."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class FeatureSpec(Loose):
    """One model input (GET /schema)."""

    name: str
    unit: str
    description: str
    min: float
    max: float
    typical: float


class RuleSpec(Loose):
    """One cross-field business rule (GET /schema)."""

    name: str
    field: str
    description: str


class SchemaInfo(Loose):
    """GET /schema: the spec the API validates with; the Predict form is built from it."""

    features: list[FeatureSpec]
    rules: list[RuleSpec] = []
    max_batch_rows: int = 1000


class ApiFieldError(Loose):
    """One reason a request or batch row was refused."""

    field: str | None = None
    rule: str | None = None
    message: str


class Interval(Loose):
    """A prediction's conformal interval (holds the true value for ``level`` of houses)."""

    level: float
    low: float
    high: float
    low_dollars: float
    high_dollars: float


class Prediction(Loose):
    """POST /predict."""

    prediction_id: str
    prediction: float
    prediction_dollars: float
    model_name: str
    model_version: str
    interval: Interval | None = None


class BatchItem(Loose):
    """One row of POST /predict/batch: a prediction or the reasons it was refused."""

    index: int
    prediction_dollars: float | None = None
    interval: Interval | None = None
    errors: list[ApiFieldError] | None = None


class BatchPrediction(Loose):
    """POST /predict/batch."""

    model_name: str
    model_version: str
    predicted: int
    rejected: int
    results: list[BatchItem]


class VersionRef(Loose):
    """A registered version holding an alias."""

    version: str
    run_id: str | None = None
    candidate: str | None = None


class CandidateResult(Loose):
    """One candidate of a training run."""

    candidate: str | None
    run_id: str
    test_rmse: float | None = None
    test_mae: float | None = None
    test_r2: float | None = None
    fit_seconds: float | None = None
    cv_rmse: float | None = None
    registered_version: str | None = None
    aliases: list[str] = []


class TrainingRun(Loose):
    """A `housing train` run and its candidates."""

    run_id: str
    run_name: str | None = None
    started_at: datetime | None = None
    status: str
    candidates: list[CandidateResult]


class FeatureImportance(Loose):
    """The champion's permutation importance of one input (GET /models)."""

    feature: str
    importance_mean: float
    importance_std: float


class ModelsOverview(Loose):
    """GET /models: training runs (newest first) and the versions holding the aliases."""

    model_name: str
    champion: VersionRef | None = None
    previous: VersionRef | None = None
    runs: list[TrainingRun]
    champion_importances: list[FeatureImportance] | None = None

    def candidate_frame(self) -> pd.DataFrame:
        """One row per candidate of each run, newest run first."""
        rows = [
            {
                "run": run.run_name or run.run_id[:8],
                "started": run.started_at,
                "candidate": c.candidate,
                "rmse": c.test_rmse,
                "mae": c.test_mae,
                "r2": c.test_r2,
                "fit_seconds": c.fit_seconds,
                "cv_rmse": c.cv_rmse,
                "version": c.registered_version,
                "aliases": ", ".join(c.aliases),
            }
            for run in self.runs
            for c in run.candidates
        ]
        return pd.DataFrame(rows)


class LogRecord(Loose):
    """One logged request (GET /predictions)."""

    id: str
    created_at: datetime
    endpoint: str
    status: int
    latency_ms: float
    prediction: float | None = None
    predictions: list[float | None] | None = None
    model_version: str | None = None
    error: Any | None = None
    actual: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None
    intervals: list[list[float] | None] | None = None


class LogPage(Loose):
    """A page of GET /predictions, newest first."""

    items: list[LogRecord]
    next_offset: int | None = None
    next_cursor: str | None = None


class FeatureDrift(Loose):
    """One feature's verdict in the latest drift result."""

    feature: str
    score: float
    method: str
    threshold: float
    drifted: bool


class DriftResult(Loose):
    """GET /drift: the latest stored result (``share`` is None until one exists)."""

    status: str
    detail: str
    logged_inputs: int = 0
    min_rows: int | None = None
    computed_at: datetime | None = None
    share: float | None = None
    detected: bool | None = None
    drift_share: float | None = None
    reference_rows: int | None = None
    current_rows: int | None = None
    features: list[FeatureDrift] = []


class DriftHistoryItem(Loose):
    """One past result of GET /drift/history."""

    computed_at: datetime
    share: float
    detected: bool
    drift_share: float
    current_rows: int


class Performance(Loose):
    """GET /performance: live RMSE/MAE ($100k) over the newest labelled predictions."""

    count: int
    window: int
    rmse: float | None = None
    mae: float | None = None
    newest: datetime | None = None
    model_version: str | None = None
    test_rmse: float | None = None
    rmse_ratio: float | None = None
    estimated_mae: float | None = None
    estimate_rows: int = 0
    estimate_window: int = 0
    test_mae: float | None = None
    interval_level: float | None = None
    interval_coverage: float | None = None
    coverage_count: int = 0
    coverage_window: int = 0


class Contribution(Loose):
    """One player's Shapley value (POST /explain)."""

    feature: str
    inputs: list[str]
    value: float | None = None
    values: dict[str, float]
    contribution: float
    contribution_dollars: float


class Explanation(Loose):
    """POST /explain: base value + contributions = prediction."""

    prediction: float
    prediction_dollars: float
    base_value: float
    base_value_dollars: float
    contributions: list[Contribution]
    model_name: str
    model_version: str
    method: str


class Refusal(Loose):
    """The business rule a what-if point breaks."""

    rule: str
    message: str


class WhatIfPoint(Loose):
    """One point of POST /explain/what-if."""

    value: float
    prediction_dollars: float | None = None
    refused: Refusal | None = None


class WhatIf(Loose):
    """POST /explain/what-if: the curve over one input."""

    feature: str
    current_value: float
    current_prediction: float
    points: list[WhatIfPoint]
    refused: int
    model_version: str
