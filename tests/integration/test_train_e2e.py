"""End to end: `housing data` then `housing train --json` on the real data into a temporary MLflow
store (quick settings), then the gate, promote and rollback through the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from housing.candidates import CANDIDATES
from housing.cli import app
from housing.features import FEATURE_NAMES, typical_row
from housing.registry import aliases
from housing.settings import get_settings
from housing.tracking import global_tracking_uri

pytestmark = pytest.mark.slow

NAME = "california-housing"
CHILD_METRICS = {
    "test_rmse",
    "test_mae",
    "test_r2",
    "test_mape",
    "cv_rmse",
    "val_rmse",
    "fit_seconds",
    "predict_latency_ms",
    "interval_coverage",
    "interval_mean_width",
    "interval_median_width",
    "interval_coverage_medinc_q1",
    "interval_coverage_medinc_q5",
    "interval_coverage_region_north",
    "interval_coverage_region_south",
    "interval_const_coverage",
    "interval_const_mean_width",
    "calibration_seconds",
}
VERSION_TAGS = {"candidate", "test_rmse", "test_mae", "test_r2", "val_rmse", "trained_at", "gate"}


def write_params(path: Path, train: dict) -> None:
    document = {"data": {"test_size": 0.2, "seed": 42, "reference_size": 2000}, "train": train}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def invoke(*args: str):
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def one_json_line(stdout: str) -> dict:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


def test_train_register_gate_promote_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_train_params: dict
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("HOUSING_PARAMS_FILE", str(tmp_path / "params.yaml"))
    write_params(tmp_path / "params.yaml", quick_train_params)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    invoke("data")
    first = one_json_line(invoke("train", "--json").stdout)

    # The JSON line: the documented shape, also written for DVC.
    assert set(first) >= {"champion", "promoted", "candidates", "seconds"}
    assert first["promoted"] is True
    assert [c["model"] for c in first["candidates"]] == list(CANDIDATES)
    for candidate in first["candidates"]:
        assert set(candidate) >= {"model", "rmse", "mae", "r2", "fit_seconds"}
        assert 0.3 < candidate["rmse"] < 0.75 and 0.5 < candidate["r2"] < 1
    champion = first["champion"]
    assert champion["version"] == 1 and champion["model"] in CANDIDATES
    best = min(first["candidates"], key=lambda c: c["cv_rmse"])
    assert (champion["model"], champion["rmse"]) == (best["model"], best["rmse"])
    assert json.loads((tmp_path / "reports" / "train.json").read_text()) == first

    # MLflow: a parent run and one child run per candidate, with the contract's tags/metrics.
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("housing.role") == "training"]
    children = [r for r in runs if r.data.tags.get("housing.role") == "candidate"]
    assert len(parents) == 1 and len(children) == 3
    assert {r.data.tags["housing.candidate"] for r in children} == set(CANDIDATES)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert CHILD_METRICS <= set(child.data.metrics)
        logged = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert logged == {"plots/predicted.png", "plots/residuals.png", "plots/importance.png"}
        bands = {a.path for a in client.list_artifacts(child.info.run_id, "intervals")}
        assert bands == {"intervals/sigma.skops", "intervals/interval.json"}
        assert 0.85 <= child.data.metrics["interval_coverage"] <= 0.95
    parent_artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"comparison.csv", "comparison.json"} <= parent_artifacts

    # Registry: version 1 is the champion; the contract's loader gives a raw-feature pipeline.
    assert aliases(client, NAME) == {"champion": "1"}
    version = client.get_model_version(NAME, "1")
    assert VERSION_TAGS <= set(version.tags)
    assert datetime.fromisoformat(version.tags["trained_at"]).utcoffset().total_seconds() == 0
    with global_tracking_uri(uri):
        model = mlflow.sklearn.load_model(f"models:/{NAME}/1")
    assert 0.5 < model.predict(pd.DataFrame([typical_row()])[list(FEATURE_NAMES)])[0] < 5
    # The registered model documents what it takes: the raw 8 features, and an example.
    with global_tracking_uri(uri):
        info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    assert [c.name for c in info.signature.inputs.inputs] == list(FEATURE_NAMES)
    assert info.signature.outputs is not None and info.saved_input_example_info is not None

    # A worse model is registered, not promoted (human output this time; JSON still written).
    write_params(tmp_path / "params.yaml", {"candidates": {"linear": {"alpha": [10000.0]}}})
    output = invoke("train").stdout
    assert "registered california-housing v2 (linear): refused by validation: validation" in output
    assert "(against champion v1)" in output
    assert f"champion: v1 {champion['model']}" in output
    second = json.loads((tmp_path / "reports" / "train.json").read_text())
    assert second["promoted"] is False
    assert second["registered"] == {"version": 2, "model": "linear"}
    assert second["champion"]["version"] == 1
    assert second["gate"]["refused_by"][0] == "validation"
    assert second["gate"]["checks"]["validation"]["mse_gain_lower"] < 0
    assert aliases(client, NAME) == {"champion": "1"}

    # Manual promotion and rollback.
    invoke("promote", "--version", "2")
    assert aliases(client, NAME) == {"champion": "2", "previous": "1"}
    invoke("rollback")
    assert aliases(client, NAME) == {"champion": "1", "previous": "2"}

    # `make run` trains only when there is no champion.
    skipped = one_json_line(invoke("train", "--if-no-champion", "--json").stdout)
    assert skipped["skipped"] is True and skipped["champion"]["version"] == 1
    assert len(client.search_model_versions(f"name='{NAME}'")) == 2
