"""`housing benchmark-models`: spatial folds hold out whole clusters; the command on a sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from housing.benchmark_models import Scores, spatial_folds, spatial_groups
from housing.cli import app
from housing.data import load_source
from housing.settings import get_settings


@pytest.fixture(scope="module")
def houses() -> pd.DataFrame:
    return load_source().frame.sample(3000, random_state=0).reset_index(drop=True)


def test_spatial_folds_hold_out_whole_clusters_once_each(houses: pd.DataFrame) -> None:
    groups = spatial_groups(houses, clusters=20, seed=0)
    assert len(np.unique(groups)) == 20
    held_count = np.zeros(len(houses), dtype=int)
    for train_rows, held_rows in spatial_folds(houses, folds=4, clusters=20, seed=0):
        assert not set(groups[train_rows]) & set(groups[held_rows])  # no cluster on both sides
        held_count[held_rows] += 1
        assert len(train_rows) + len(held_rows) == len(houses)
    assert (held_count == 1).all()


def test_spatial_clusters_are_places_not_random_rows(houses: pd.DataFrame) -> None:
    # Houses at the same coordinates always share a cluster, and a cluster is compact: its
    # spread in degrees is a fraction of the state's, unlike a random fifth of the rows.
    groups = spatial_groups(houses, clusters=20, seed=0)
    by_place = pd.Series(groups).groupby([houses.Latitude, houses.Longitude]).nunique()
    assert (by_place == 1).all()
    spread = houses.groupby(groups)[["Latitude", "Longitude"]].std().mean()
    assert (spread < houses[["Latitude", "Longitude"]].std() / 3).all()


def test_scores_report_mean_and_sample_sd() -> None:
    scores = Scores()
    for rmse in (0.4, 0.5, 0.6):
        scores.add({"rmse": rmse, "mae": rmse / 2, "r2": 1 - rmse})
    summary = scores.summary()
    assert summary["rmse"]["mean"] == pytest.approx(0.5)
    assert summary["rmse"]["sd"] == pytest.approx(0.1)  # ddof=1
    assert summary["r2"]["values"] == pytest.approx([0.6, 0.5, 0.4])


@pytest.fixture
def quick_params_file(tmp_path: Path, quick_train_params: dict) -> Path:
    params = quick_train_params
    params["cv_folds"] = 2
    params["candidates"]["random_forest"]["n_estimators"] = [5]
    params["candidates"]["gradient_boosting"]["max_iter"] = [10]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": params}), encoding="utf-8")
    return path


def _run(args: list[str], params: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOUSING_PARAMS_FILE", str(params))
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["benchmark-models", *args])


def test_benchmark_command_on_a_sample(
    tmp_path: Path, quick_params_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bench.json"
    args = ["--seeds", "0", "7", "--rows", "600", "--spatial-folds", "2"]
    args += ["--spatial-clusters", "6", "--json", str(out)]
    result = _run(args, quick_params_file, monkeypatch)
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    names = summary["candidates"]
    assert names == list(yaml.safe_load(quick_params_file.read_text())["train"]["candidates"])
    assert summary["protocol"]["seeds"] == [0, 7] and summary["rows"] == 600
    for name in names:
        rmse = summary["random_split"][name]["rmse"]
        assert len(rmse["values"]) == 2 and rmse["mean"] == pytest.approx(np.mean(rmse["values"]))
        assert rmse["sd"] == pytest.approx(np.std(rmse["values"], ddof=1), abs=1e-6)
        assert len(summary["spatial"][name]["rmse"]["values"]) == 2
        assert 0.1 < rmse["mean"] < 1.5  # a model, not a constant (target sd is ~1.15)
    # The champion row is, seed by seed, the test score of the candidate validation picked.
    champion = summary["random_split"]["champion"]["rmse"]["values"]
    for seed, (name, value) in enumerate(zip(summary["champions"], champion)):
        assert summary["random_split"][name]["rmse"]["values"][seed] == value
    table = result.output.splitlines()
    assert table[0].startswith("| candidate | random RMSE")
    assert [line.split(" | ")[0] for line in table[2 : 2 + len(names)]] == [
        f"| {name}" for name in names
    ]


def test_benchmark_command_refuses_repeated_seeds(
    quick_params_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(["--seeds", "1", "--seeds", "1"], quick_params_file, monkeypatch)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: --seeds must be distinct non-negative integers; got [1, 1]"
    )
    result = _run(["--seeds", "1", "two"], quick_params_file, monkeypatch)
    assert result.exit_code == 1
    assert result.output.strip() == "error: --seeds takes non-negative integers; got two"
