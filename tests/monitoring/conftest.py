"""Fixtures for the monitoring tests: the real prepared data (train/test/reference) in tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from housing import data

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prepared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`housing data` run for real (offline copy of the dataset) into a temporary data dir."""
    home = os.environ.get("SCIKIT_LEARN_DATA")
    if not home or not (Path(home) / "cal_housing_py3.pkz").is_file():
        pytest.fail("set SCIKIT_LEARN_DATA to the offline dataset (the Makefile does)")
    data_dir = tmp_path_factory.mktemp("monitoring-data")
    data.prepare(data_dir, data.load_params(ROOT / "params.yaml"))
    return data_dir


@pytest.fixture(scope="session")
def reference(prepared_data_dir: Path) -> pd.DataFrame:
    return data.load_reference(prepared_data_dir)


@pytest.fixture(scope="session")
def held_out(prepared_data_dir: Path) -> pd.DataFrame:
    return data.load_split(prepared_data_dir)[1]
