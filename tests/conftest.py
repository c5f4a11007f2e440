"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from housing.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_settings() -> None:
    """Settings are cached per process; every test starts from the environment it sets up."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def dataset_available() -> bool:
    """Whether scikit-learn can load California Housing without a download."""
    home = os.environ.get("SCIKIT_LEARN_DATA")
    return bool(home) and (Path(home) / "cal_housing_py3.pkz").exists()
