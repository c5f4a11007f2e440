"""Expectations on the real California Housing data (offline via ``SCIKIT_LEARN_DATA``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from sklearn.datasets import fetch_california_housing
from sklearn.linear_model import LinearRegression
from sklearn.metrics import root_mean_squared_error
from typer.testing import CliRunner

from housing import data
from housing.cli import app
from housing.features import FEATURE_NAMES, TARGET
from housing.geo import california
from housing.validation import validate_frame

ROOT = Path(__file__).resolve().parents[2]

# From ../shared/data/README.md ("Known facts (checked)"), as printed there (rounded).
KNOWN_MEANS = {
    "MedInc": "3.8707",
    "HouseAge": "28.6395",
    "AveRooms": "5.4290",
    "AveBedrms": "1.0967",
    "Population": "1425.48",
    "AveOccup": "3.0707",
    "Latitude": "35.6319",
    "Longitude": "-119.5697",
    "MedHouseVal": "2.0686",
}


@pytest.fixture(scope="module")
def loaded() -> data.Loaded:
    return data.load_source()


def raw_archive() -> Path | None:
    """The raw StatLib archive beside the scikit-learn cache, as in ../shared/data."""
    candidates = [ROOT.parent / "shared" / "data" / "cal_housing.tgz"]
    if os.environ.get("SCIKIT_LEARN_DATA"):
        candidates.insert(0, Path(os.environ["SCIKIT_LEARN_DATA"]).parent / "cal_housing.tgz")
    return next((path for path in candidates if path.is_file()), None)


def test_shape_and_columns(loaded: data.Loaded) -> None:
    assert loaded.frame.shape == (20_640, 9)
    assert list(loaded.frame.columns) == [*FEATURE_NAMES, TARGET.name]
    assert loaded.source == data.SKLEARN_SOURCE


def test_every_row_passes_the_spec(loaded: data.Loaded) -> None:
    assert validate_frame(loaded.frame, require_target=True) == []


def test_every_row_is_in_california(loaded: data.Loaded) -> None:
    inside = shapely.contains_xy(
        california(), loaded.frame["Longitude"].to_numpy(), loaded.frame["Latitude"].to_numpy()
    )
    assert inside.all(), int((~inside).sum())


@pytest.mark.parametrize("column", KNOWN_MEANS)
def test_known_means(loaded: data.Loaded, column: str) -> None:
    printed = KNOWN_MEANS[column]
    decimals = len(printed.split(".")[1])
    assert loaded.frame[column].mean() == pytest.approx(float(printed), abs=0.5 * 10**-decimals)


def test_target_is_censored_at_5_00001(loaded: data.Loaded) -> None:
    target = loaded.frame[TARGET.name]
    assert target.max() == 5.00001
    capped = int((target == 5.00001).sum())
    assert capped > 900  # the censored top tail is a visible spike, not a stray row
    assert (target > 5.0).sum() == capped


def test_house_age_is_capped_at_52(loaded: data.Loaded) -> None:
    age = loaded.frame["HouseAge"]
    assert age.max() == 52
    assert (age == 52).sum() > 1000


def test_no_duplicate_rows(loaded: data.Loaded) -> None:
    assert not loaded.frame.duplicated().any()


def test_raw_archive_derives_exactly_sklearns_frame() -> None:
    archive = raw_archive()
    if archive is None:
        pytest.skip("no cal_housing.tgz beside SCIKIT_LEARN_DATA or in ../shared/data")
    from_archive = data.load_source(archive).frame
    pd.testing.assert_frame_equal(
        from_archive, fetch_california_housing(as_frame=True).frame, check_exact=True
    )


def test_default_split_reproduces_the_known_linear_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOUSING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOUSING_PARAMS_FILE", str(ROOT / "params.yaml"))
    result = CliRunner().invoke(app, ["data", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    params = data.load_params(ROOT / "params.yaml")
    assert summary["rows"]["test"] == int(np.ceil(20_640 * params.test_size))
    rows = summary["rows"]
    assert rows["train"] + rows["validation"] + rows["test"] == 20_640
    assert rows["validation"] == int(np.ceil((20_640 - rows["test"]) * params.validation_size))
    splits = data.load_splits(tmp_path)
    train, test = splits.train, splits.test
    reference = data.load_reference(tmp_path)
    assert len(reference) == min(params.reference_size, len(train))
    assert len(reference.merge(train, how="inner")) == len(
        reference
    ), "drift reference: fitting rows"
    if (params.test_size, params.seed) == (0.2, 42):
        # README: plain LinearRegression on the default 80 % (fitting + validation rows) scores
        # test RMSE 0.7456.
        features = list(FEATURE_NAMES)
        train = pd.concat([splits.train, splits.validation], ignore_index=True)
        model = LinearRegression().fit(train[features], train[TARGET.name])
        rmse = root_mean_squared_error(test[TARGET.name], model.predict(test[features]))
        assert rmse == pytest.approx(0.7456, abs=1e-4)


def test_the_validation_split_is_deterministic_and_disjoint_from_fitting_and_test_rows(
    tmp_path: Path,
) -> None:
    params = data.load_params(ROOT / "params.yaml")
    first = data.prepare(tmp_path / "a", params)
    second = data.prepare(tmp_path / "b", params)
    assert first["files"]["validation.csv"] == second["files"]["validation.csv"]
    assert first["files"]["validation.csv"]["rows"] == 2064  # 10 % of 20,640
    splits = data.load_splits(tmp_path / "a")
    everything = data.load_source(None).frame
    # Rows are identified by their position in the source (no two rows are identical).
    assert not everything.duplicated().any()
    keyed = everything.reset_index(names="row")
    rows = {
        name: set(frame.merge(keyed, on=list(data.COLUMNS))["row"])
        for name, frame in vars(splits).items()
    }
    assert [len(rows[name]) for name in ("train", "validation", "test")] == [14448, 2064, 4128]
    assert not rows["validation"] & rows["train"] and not rows["validation"] & rows["test"]
    assert not rows["train"] & rows["test"]
    assert rows["train"] | rows["validation"] | rows["test"] == set(keyed["row"])
    # The drift reference stays inside the fitting rows.
    reference = data.load_reference(tmp_path / "a").merge(keyed, on=list(data.COLUMNS))
    assert set(reference["row"]) <= rows["train"]
