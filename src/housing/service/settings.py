"""Settings of the prediction service, read from the environment (one object per deployable).

Nothing is read at import time: the API injects ``get_service_settings`` with ``Depends`` and
tests override it (``app.dependency_overrides``) or pass a ``ServiceSettings`` to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Everything `housing serve` can be told through ``HOUSING_*`` (and MLflow's) variables."""

    model_config = SettingsConfigDict(env_prefix="HOUSING_", extra="ignore")

    database_url: str = "sqlite:///var/predictions.db"
    """Prediction log: any SQLAlchemy URL (SQLite file by default, PostgreSQL for replicas)."""
    database_timeout_seconds: float = Field(2.0, gt=0)
    """How long a log write waits for a locked database before the request gets a 503."""
    log_read_timeout_seconds: float = Field(1.0, gt=0)
    """Longest read of the log (GET /predictions, the monitor's queries) before it is stopped
    and answered 503: on SQLite a long read keeps the WAL from being checkpointed."""
    api_key: SecretStr | None = None
    """Secret for ``X-API-Key`` on admin endpoints; unset means admin endpoints refuse."""
    labeller_keys: Annotated[list[SecretStr], NoDecode] = []
    """Comma-separated secrets for ``X-Labeller-Key`` on /feedback: labels sent with one (or with
    the admin key) may train; without a key feedback is anonymous (monitoring only)."""
    read_keys: Annotated[list[SecretStr], NoDecode] = []
    """Keys (comma-separated) that may read the log: ``GET /predictions``, ``/drift/report``,
    ``/drift/history`` (the admin key may too); none and no admin key = those refuse."""
    docs: bool = True
    """Serve ``/docs``, ``/redoc`` and ``/openapi.json``; false = 404 for all three."""
    metrics_port: int | None = Field(None, ge=1, le=65535)
    """Serve ``/metrics`` on this port only (prometheus-client's server, same host), not on
    the API's; unset = on the API's port."""
    forwarded_allow_ips: str = ""
    """Proxies (comma-separated IPs/CIDRs, "*" any) whose ``X-Forwarded-For`` sets the client
    address the rate limit and the log see; empty = trust none, not even loopback."""
    row_rate_limit: str = "1000/second"
    """Houses predicted per client (``/predict`` 1, ``/predict/batch`` its row count), in
    limits' notation; "" = off, and off with ``rate_limit``. Below 1,000 per window a full
    batch is always refused."""
    limit_concurrency: int | None = Field(1000, ge=1)
    """Connections plus requests in progress per worker before uvicorn answers 503."""
    max_header_bytes: int = Field(16_384, ge=1024)
    """Largest request head (request line + headers): over it, 431 and the connection closed
    (``housing.service.httpcap`` for httptools, uvicorn's own cap for h11)."""
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "HOUSING_MLFLOW_TRACKING_URI"),
    )
    model_name: str = "california-housing"
    model_alias: str = "champion"
    experiment_name: str = "california-housing"
    reload_interval_seconds: float = Field(10.0, gt=0)
    """How often the registry is polled for a moved ``champion`` alias."""
    rate_limit: str = "100/second"
    """Per-client limit in slowapi/limits notation ("100/second", "6000/minute"); "" = off."""
    explain_rate_limit: str = "20/second"
    """Per-client limit on /explain and /explain/what-if (each costs ~100 predicts); "" = off."""
    explain_predict: Literal["served", "pipeline"] = "served"
    """Which predict evaluates /explain's coalitions: the served one (treelite when compiled:
    exact for /predict) or the scikit-learn pipeline's (agrees with it to 1e-9; measured ~4x
    faster on 6,400 rows, where treelite's interpreter is slower than scikit-learn's)."""
    max_body_bytes: int = Field(1_048_576, gt=0)
    """Larger request bodies get a 413 (a 1,000-house batch is about 200 kB)."""
    predictions_max_bytes: int = Field(4_194_304, ge=65_536)
    """A ``GET /predictions`` page stops before its stored rows exceed this (at most 500 rows
    in any case); ``next_offset`` continues it."""
    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins allowed by CORS, comma-separated ("*" for any); empty = no CORS headers."""
    batch_inline: bool = True
    """Run each batch's predict and commit on the event loop (fastest when both are CPU-bound,
    as with SQLite); false = on a worker thread (for a log database across a network)."""
    batch_linger_ms: float = Field(5.0, ge=0)
    """How long a batch may wait for as many requests as the previous one had."""
    graceful_timeout_seconds: int = Field(10, ge=1)
    """On SIGTERM, how long in-flight requests may take to finish before they are cut off."""
    model_threads: int = Field(1, ge=1)
    """OpenMP/BLAS threads for predict: 1 avoids 100 ms tails of oversubscribed OpenMP."""
    compiled_predict: bool = True
    """Evaluate a tree-ensemble champion's trees with treelite when it reproduces the pipeline's
    predictions (to 1e-9): ~4x faster per batch; false = always call the pipeline."""
    log_level: str = "INFO"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("read_keys", "labeller_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("rate_limit", "row_rate_limit", "explain_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        value = value.strip()
        if value.lower() in ("", "off", "none"):
            return ""
        parse_many(value)  # raises ValueError naming the bad part
        return value


@lru_cache
def get_service_settings() -> ServiceSettings:
    """The process-wide service settings (tests override the dependency or clear the cache)."""
    return ServiceSettings()
