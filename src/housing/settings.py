"""Settings of the training side (data, training, registry), read from the environment.

Each deployable has one settings object; the service's lives in ``housing.service.settings``.
Nothing is read at import time: call ``get_settings()`` where the value is used.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Paths and MLflow coordinates shared by `housing data`, `housing train` and the registry."""

    model_config = SettingsConfigDict(env_prefix="HOUSING_", extra="ignore")

    data_dir: Path = Path("data")
    params_file: Path = Path("params.yaml")
    reports_dir: Path = Path("reports")
    model_name: str = "california-housing"
    experiment_name: str = "california-housing"
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "HOUSING_MLFLOW_TRACKING_URI"),
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache with ``get_settings.cache_clear()``)."""
    return Settings()
