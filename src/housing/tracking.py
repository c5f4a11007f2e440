"""MLflow plumbing: where runs and artifacts go, and failing fast when the store is unreachable.

Every function takes the URI explicitly; ``global_tracking_uri`` scopes the one place MLflow
insists on process-global state (its fluent API) and restores it afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mlflow_env(**defaults: str) -> Iterator[None]:
    """Set MLflow environment knobs for a block, unless the user set them already."""
    saved = {key: os.environ.get(key) for key in defaults}
    os.environ.update({key: value for key, value in defaults.items() if saved[key] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking store cannot be reached or opened."""


def check_tracking(uri: str) -> None:
    """Raise TrackingUnavailableError unless the tracking store answers a trivial query."""
    from mlflow import MlflowClient

    try:
        # No retries and a short timeout: MLflow's defaults keep retrying for minutes.
        with mlflow_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5"):
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 (any failure here means "cannot use this store")
        text = " ".join(str(exc).split())
        found = re.search(r"\[Errno -?\d+\] [^'\")]+|timed out|Connection refused", text)
        reason = found.group(0) if found else text[:200]
        raise TrackingUnavailableError(
            f"cannot reach the MLflow tracking store {uri} ({reason}): start the server or "
            "set MLFLOW_TRACKING_URI"
        ) from None


@contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (runs, ``log_model``) at ``uri`` for a block, then restore.

    ``mlflow.set_tracking_uri`` sets a process global *and* the environment variable, so without
    restoring, one training would redirect every later MLflow call in the process (a test
    session, say). Reads MLflow's private globals to put back exactly what was there.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_env = {key: os.environ.get(key) for key in keys}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store sit beside the database (``mlartifacts/``)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None  # a tracking server decides (mlflow server --artifacts-destination)
    database = Path(uri.removeprefix(prefix).split("?")[0])
    return (database.resolve().parent / "mlartifacts").as_uri()


def experiment_id(client, name: str, uri: str) -> str:
    """The experiment's id, creating it (with local artifacts for sqlite) on first use."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(uri))
