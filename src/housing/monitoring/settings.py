"""Settings of the monitoring inside the API (drift job, live accuracy), from ``HOUSING_*``.

Read where used (``get_monitoring_settings()``), never at import time. The defaults are the
calibrated ones: see ``housing.monitoring.drift`` and `housing drift-calibrate`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from housing.monitoring.drift import (
    DEFAULT_DRIFT_SHARE,
    DEFAULT_METHOD,
    DEFAULT_THRESHOLD,
    DriftConfig,
)


class MonitoringSettings(BaseSettings):
    """How often and on how many rows drift is computed; how live accuracy is windowed."""

    model_config = SettingsConfigDict(env_prefix="HOUSING_", extra="ignore")

    data_dir: Path = Path("data")
    """Where `housing data` wrote ``processed/reference.csv`` (the drift reference)."""
    drift_interval_seconds: float = Field(60.0, gt=0)
    """How often the background job recomputes drift."""
    drift_min_rows: int = Field(500, ge=50)
    """No drift verdict before this many inputs are logged (K-S is noisy on fewer)."""
    drift_window_rows: int = Field(1000, ge=50)
    """Drift compares the latest this-many logged inputs with the reference."""
    drift_method: str = DEFAULT_METHOD
    drift_threshold: float = Field(DEFAULT_THRESHOLD, gt=0)
    drift_share: float = Field(DEFAULT_DRIFT_SHARE, gt=0, le=1)
    drift_reports_kept: int = Field(5, ge=1)
    """How many Evidently HTML reports the log DB keeps (each is a few MB before compression)."""
    performance_window: int = Field(500, ge=1)
    """Live RMSE/MAE are computed over the latest this-many labelled predictions."""

    @model_validator(mode="after")
    def _window_holds_the_minimum(self) -> MonitoringSettings:
        if self.drift_window_rows < self.drift_min_rows:
            raise ValueError(
                f"HOUSING_DRIFT_WINDOW_ROWS ({self.drift_window_rows}) must be at least "
                f"HOUSING_DRIFT_MIN_ROWS ({self.drift_min_rows})"
            )
        return self

    def drift_config(self) -> DriftConfig:
        """The drift decision rule these settings describe."""
        return DriftConfig(self.drift_method, self.drift_threshold, self.drift_share)


@lru_cache
def get_monitoring_settings() -> MonitoringSettings:
    """The process-wide monitoring settings (tests clear the cache)."""
    return MonitoringSettings()
