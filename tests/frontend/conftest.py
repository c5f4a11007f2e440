"""Fixtures for the UI tests: a live seeded API, a registry with two training runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_live import (
    ADMIN_KEY,
    LINEAR_ONLY,
    LiveApi,
    api_env,
    free_port,
    seed,
    start_api,
    stop,
    wait_for,
)

from frontend.settings import get_settings


@pytest.fixture(scope="session")
def live_api(trained_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """The API serving the `trained_registry` champion, seeded, with a drift result computed."""
    # trained_registry keeps its prepared data beside its MLflow database.
    data_dir = Path(trained_registry.removeprefix("sqlite:///")).parent / "data"
    root = tmp_path_factory.mktemp("ui-api")
    port = free_port()
    # With an API key, so the Admin page can show itself; nothing here retrains the shared store.
    env = api_env(trained_registry, data_dir, root / "log.db") | {"HOUSING_API_KEY": ADMIN_KEY}
    process = start_api(env, port, root / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", process)
        seed(url, data_dir)
        yield LiveApi(url, trained_registry, data_dir, process)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def two_run_registry(
    trained_registry: str, tmp_path_factory: pytest.TempPathFactory, registry_copier
) -> str:
    """Tracking URI of a private copy of `trained_registry` with a second, real (one quick
    candidate) training run whose version was promoted by hand: champion v2, previous v1.
    The shared database is only read (the new run's artifacts land under new ids beside it, as
    with `registry_copy`)."""
    from mlflow import MlflowClient

    from housing import registry, train
    from housing.settings import Settings

    root = tmp_path_factory.mktemp("two-run-registry")
    uri = registry_copier(trained_registry, root)
    data_dir = Path(trained_registry.removeprefix("sqlite:///")).parent / "data"
    settings = Settings(data_dir=data_dir, reports_dir=root / "reports", MLFLOW_TRACKING_URI=uri)
    result = train.train(settings, train.TrainParams.model_validate(LINEAR_ONLY))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    registry.promote(client, settings.model_name, result.registered["version"])
    aliases = registry.aliases(client, settings.model_name)
    assert aliases == {"champion": "2", "previous": "1"}, aliases
    return uri


@pytest.fixture(autouse=True)
def _fresh_ui_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
