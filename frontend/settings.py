"""The UI's settings, read from the environment (the UI is its own deployable).

Nothing is read at import time: pages call ``get_settings()``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UISettings(BaseSettings):
    """Where the API is and how long the UI waits for it."""

    model_config = SettingsConfigDict(env_prefix="HOUSING_", extra="ignore")

    api_url: str = "http://127.0.0.1:8000"
    # Short: a page must say "API unreachable" quickly rather than hang.
    api_connect_timeout_seconds: float = Field(1.0, gt=0)
    api_read_timeout_seconds: float = Field(5.0, gt=0)
    # How many logged predictions the History page pulls at most (newest first).
    ui_history_rows: int = Field(10_000, ge=1)
    # A key of the API's HOUSING_READ_KEYS for the log's pages (History, drift history and
    # report); unset = each browser session types one once.
    read_key: SecretStr | None = None


@lru_cache
def get_settings() -> UISettings:
    """The process-wide UI settings (tests clear the cache)."""
    return UISettings()
