"""Fixtures for the API tests: the real app on the `trained_registry` champion, a real
SQLite log in a temporary folder, and the same champion loaded independently as a reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from service_tools import settings_for

from api.main import create_app
from housing.service.settings import ServiceSettings


@pytest.fixture(scope="module")
def api_settings(trained_registry: str, tmp_path_factory: pytest.TempPathFactory):
    """Settings for one module's app (its own log file)."""
    return settings_for(trained_registry, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(api_settings: ServiceSettings) -> Iterator[TestClient]:
    """The app with its lifespan running (model loaded, log migrated, batcher started)."""
    with TestClient(create_app(api_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def engine(client: TestClient) -> Engine:
    """The app's prediction-log engine."""
    return client.app.state.runtime.engine


@pytest.fixture(scope="module")
def reference_model(trained_registry: str):
    """The champion pipeline, loaded apart from the service (to check its answers)."""
    from housing.registry import load_model

    return load_model("california-housing", "champion", tracking_uri=trained_registry)


@pytest.fixture(autouse=True)
def _fresh_service_settings() -> Iterator[None]:
    """The service's settings are cached per process; each test reads its own environment."""
    from housing.service.settings import get_service_settings

    get_service_settings.cache_clear()
    yield
    get_service_settings.cache_clear()
