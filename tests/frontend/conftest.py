"""Fixtures for the UI tests: a live seeded API, a URL where nothing listens (API down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_live import (
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
    process = start_api(
        api_env(trained_registry, data_dir, root / "log.db"), port, root / "api.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", process)
        seed(url, data_dir)
        yield LiveApi(url, trained_registry, data_dir, process)
    finally:
        stop(process)


@pytest.fixture
def down_url() -> str:
    """An API URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def _fresh_ui_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
