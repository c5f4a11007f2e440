"""Fixtures shared by every kind of test."""

from __future__ import annotations

import copy
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


QUICK_TRAIN = {
    "seed": 42,
    "cv_folds": 2,
    "n_neighbors": 10,
    "importance_rows": 200,
    "latency_repeats": 5,
    "candidates": {
        "linear": {"alpha": [1.0]},
        "random_forest": {"n_estimators": [20], "max_samples": [0.5], "min_samples_leaf": [3]},
        "gradient_boosting": {"max_iter": [60], "learning_rate": [0.2]},
    },
}
"""Small settings for tests: no search, few trees; the pipelines and logging are the real ones."""


@pytest.fixture
def quick_train_params() -> dict:
    """The ``train:`` params `trained_registry` uses (a copy: edit freely)."""
    return copy.deepcopy(QUICK_TRAIN)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tracking URI of a temporary MLflow store (sqlite + local artifacts) after one real, quick
    training on the real data: three candidate runs, a registered version aliased `champion`.
    The data it trained on (``housing data`` layout) is in ``data/`` beside the database."""
    from housing import data, train
    from housing.settings import Settings

    root = tmp_path_factory.mktemp("trained-registry")
    data.prepare(root / "data", data.DataParams(test_size=0.2, seed=42, reference_size=2000))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    settings = Settings(
        data_dir=root / "data", reports_dir=root / "reports", MLFLOW_TRACKING_URI=uri
    )
    result = train.train(settings, train.TrainParams.model_validate(QUICK_TRAIN))
    assert result.promoted, "a fresh registry must get a champion"
    return uri


def copy_registry(uri: str, folder: Path) -> str:
    """Tracking URI of a copy of the sqlite store at ``uri`` in ``folder``: the database is
    copied (SQLite's backup API), the artifacts stay shared (runs logged to the copy get new
    folders beside them)."""
    import sqlite3

    source = sqlite3.connect(uri.removeprefix("sqlite:///"))
    target = sqlite3.connect(folder / "mlflow.db")
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="session")
def registry_copier():
    """`copy_registry`, for fixtures in other folders (conftest modules are not imported)."""
    return copy_registry


@pytest.fixture
def registry_copy(trained_registry: str, tmp_path: Path) -> str:
    """Tracking URI of a private copy of `trained_registry` (same artifacts), for tests that
    register or promote versions without changing the shared store."""
    return copy_registry(trained_registry, tmp_path)


@pytest.fixture
def project_without_git(tmp_path: Path) -> Path:
    """A copy of the project's DVC setup with no ``.git`` around it, as a source archive, an
    export or the image holds it (a temporary folder is in no git work tree)."""
    from housing.batches import in_git

    target = tmp_path / "housing-src"
    for name in (".dvc/config", ".dvc/.gitignore", ".dvcignore", "dvc.yaml", "params.yaml"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes((ROOT / name).read_bytes())
    assert not in_git(target), f"{tmp_path} is inside a git work tree"
    return target


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules of real servers first: `make test` hands whole files to two workers, and a
    one-minute integration file picked up last would leave one worker idle while it runs.
    The sort is stable, so tests keep their order within a module."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("integration") else 1)
