"""Response bodies of the monitoring endpoints (GET /drift, /drift/history, /performance)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class FeatureDriftBody(BaseModel):
    """One feature's verdict in the latest drift result."""

    feature: str
    score: float = Field(
        description="Evidently's drift score (for K-S: a p-value; lower = more drifted)"
    )
    method: str
    threshold: float
    drifted: bool


class DriftBody(BaseModel):
    """The latest stored drift result and what the background check is doing."""

    status: Literal["waiting", "ok", "unavailable", "error"]
    detail: str
    checked_at: datetime | None = Field(description="When this process last checked")
    logged_inputs: int = Field(description="Inputs available to the last check (window-capped)")
    min_rows: int
    window_rows: int
    interval_seconds: float
    run_id: int | None = None
    computed_at: datetime | None = None
    share: float | None = Field(None, description="Share of features drifted")
    detected: bool | None = Field(None, description="Dataset drift: share >= drift_share")
    drift_share: float | None = None
    drifted_features: list[str] = []
    reference_rows: int | None = None
    current_rows: int | None = None
    features: list[FeatureDriftBody] = []


class DriftHistoryItem(BaseModel):
    """One past drift result (for charts of drift over time)."""

    run_id: int
    computed_at: datetime
    share: float
    detected: bool
    drift_share: float
    current_rows: int
    drifted_features: list[str]


class PerformanceBody(BaseModel):
    """Rolling accuracy over the newest labelled predictions, next to the offline test RMSE."""

    count: int = Field(description="Labelled predictions in the window")
    window: int
    rmse: float | None = Field(None, description="RMSE in $100k (None without feedback)")
    mae: float | None = Field(None, description="MAE in $100k (None without feedback)")
    oldest: datetime | None = None
    newest: datetime | None = None
    model_version: str | None = None
    test_rmse: float | None = Field(None, description="The serving model's test-split RMSE")
    rmse_ratio: float | None = Field(None, description="rmse / test_rmse (alert above 1.25)")
    estimated_mae: float | None = Field(
        None, description="Label-free MAE estimate ($100k): mean σ(x) over the newest inputs"
    )
    estimate_rows: int = Field(0, description="Served inputs the estimate averages")
    estimate_window: int = Field(0, description="The most inputs it averages (drift window)")
    test_mae: float | None = Field(None, description="The serving model's test-split MAE")
    interval_level: float | None = Field(None, description="Nominal coverage of the intervals")
    interval_coverage: float | None = Field(
        None, description="Share of labelled predictions inside their logged interval"
    )
    coverage_count: int = Field(0, description="Labelled predictions with an interval counted")
    coverage_window: int = Field(0, description="The most labelled predictions counted")
