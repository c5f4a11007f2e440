"""Fixtures of the reliability tests: the trained registry's data, real houses, service set-ups."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_harness import service_env
from sqlalchemy.engine import make_url

from housing.features import FEATURE_NAMES


@pytest.fixture(scope="session")
def registry_root(trained_registry: str) -> Path:
    """Folder of the session's trained registry (mlflow.db, artifacts, prepared data)."""
    root = Path(make_url(trained_registry).database).parent
    if not (root / "data").is_dir():
        pytest.fail(f"trained_registry left no prepared data in {root / 'data'}")
    return root


@pytest.fixture(scope="session")
def data_dir(registry_root: Path) -> Path:
    return registry_root / "data"


@pytest.fixture(scope="session")
def houses(data_dir: Path) -> list[dict[str, float]]:
    """Valid houses: the held-out split the registry's champion never saw."""
    from housing.data import load_split

    _, test = load_split(data_dir)
    return test[list(FEATURE_NAMES)].to_dict("records")


@pytest.fixture
def pick(houses: list[dict[str, float]]) -> Callable[[], dict[str, float]]:
    """A random valid house per call (seeded per test)."""
    rng = random.Random(7)
    return lambda: dict(rng.choice(houses))


@pytest.fixture
def env_for(trained_registry: str, data_dir: Path, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Service environment on the shared (read-only used) registry and a fresh log in tmp."""

    def make(**overrides: str) -> dict[str, str]:
        return service_env(trained_registry, tmp_path / "log.db", data_dir, **overrides)

    return make
