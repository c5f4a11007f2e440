"""Helpers for the service's tests: registry changes and log reads on real stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from housing import registry
from housing.features import FEATURE_NAMES
from housing.service import log as prediction_log
from housing.service.settings import ServiceSettings

MODEL = "california-housing"
API_KEY = "test-admin-key"


def settings_for(tracking_uri: str, folder: Path, **overrides: Any) -> ServiceSettings:
    """Service settings on a tracking store, with the log in ``folder``."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder / 'predictions.db'}",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "rate_limit": "",
        "explain_rate_limit": "",  # tests of the limits set them
        "api_key": API_KEY,
        "reload_interval_seconds": 3600,
    }
    values.update(overrides)
    return ServiceSettings(**values)


def feedback_row(prediction_id: str, actual: float) -> dict[str, Any]:
    """An accepted /feedback row, as the route queues it."""
    return prediction_log.new_row(
        "/feedback",
        status=200,
        latency_ms=1.0,
        inputs={"prediction_id": prediction_id, "actual": actual},
        feedback_for=prediction_id,
        feedback_key=prediction_id,
        actual=actual,
        prediction=2.0,
        model_version="1",
    )


def client_for(uri: str) -> MlflowClient:
    """An MLflow client on ``uri`` for tracking and registry."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def register_candidate(uri: str, candidate: str, promote: bool = True) -> str:
    """Register the logged model of ``candidate`` from the store's training run as a new
    version (promoted to champion when asked); returns the version."""
    client = client_for(uri)
    experiment = client.get_experiment_by_name(MODEL)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`housing.candidate` = '{candidate}'"
    )
    run = runs[0]
    models = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    model = next(m for m in models if m.source_run_id == run.info.run_id)
    version = registry.register(
        client,
        MODEL,
        f"models:/{model.model_id}",
        run.info.run_id,
        {"candidate": candidate, "test_rmse": run.data.metrics.get("test_rmse", 0.0)},
    )
    if promote:
        registry.promote(client, MODEL, int(version.version))
    return str(version.version)


def register_broken(uri: str, empty_dir: Path, promote: bool = True) -> str:
    """Register a version whose source holds no model at all (it cannot load)."""
    empty_dir.mkdir(parents=True, exist_ok=True)
    client = client_for(uri)
    version = client.create_model_version(MODEL, source=empty_dir.as_uri(), run_id=None)
    if promote:
        registry.promote(client, MODEL, int(version.version))
    return str(version.version)


def champion_version(uri: str) -> str:
    """The version the store's ``champion`` alias points at."""
    return str(client_for(uri).get_model_version_by_alias(MODEL, "champion").version)


def row_values(house: dict[str, Any]) -> list[float]:
    """A house's features in spec order."""
    return [float(house[name]) for name in FEATURE_NAMES]
