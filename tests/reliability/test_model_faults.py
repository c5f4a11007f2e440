"""Faults of the model source: a corrupt or incompatible champion, an unreachable tracking server.
Each time the new version is refused, the refusal is counted, and the old model keeps serving."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from reliability_harness import (
    API_KEY,
    Hammer,
    Request,
    Service,
    free_port,
    running_service,
    service_env,
    start_mlflow_server,
    stop_process,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "california-housing"
RELOAD_PATIENCE = 30.0
"""Seconds /admin/reload may take to give up on a dead tracking server (MLflow's own retry
defaults would wait about four minutes)."""


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _source_dir(version: Any) -> Path:
    return Path(version.source.removeprefix("file://"))


def corrupt_copy(champion: Any, where: Path) -> Path:
    """The champion's artifacts with its serialised model truncated to a third."""
    shutil.copytree(_source_dir(champion), where)
    model = where / "model.skops"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    return where


def incompatible_model(champion: Any, where: Path) -> Path:
    """A valid sklearn model whose signature takes 3 made-up columns, not the 8 features."""
    import mlflow.sklearn
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((30, 3)), columns=["rooms", "income", "age"])
    model = LinearRegression().fit(frame, rng.random(30))
    mlflow.sklearn.save_model(
        model, str(where), serialization_format="skops", input_example=frame.head(2)
    )
    return where


def reload_failures(client: httpx.Client) -> float:
    """``housing_model_reloads_total{result="failure"}`` as /metrics shows it now."""
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "housing_model_reloads_total" and sample.labels == {
                "result": "failure"
            }:
                return sample.value
    return 0.0


def _predicting(service: Service, pick: Callable[[], dict[str, float]]) -> Hammer:
    def request(_: int) -> Request:
        return "/predict", pick()

    return Hammer(service.url, request, threads=2)


@pytest.fixture(scope="module")
def model_service(
    trained_registry: str,
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    registry_copier,
) -> Iterator[tuple[Service, str]]:
    """A service on a private copy of the registry (aliases move only when a test says)."""
    workdir = tmp_path_factory.mktemp("model-faults")
    uri = registry_copier(trained_registry, workdir)
    env = service_env(uri, workdir / "log.db", data_dir, HOUSING_RELOAD_INTERVAL_SECONDS="3600")
    with running_service(env, workdir) as service:
        yield service, uri


@pytest.mark.parametrize("build", [corrupt_copy, incompatible_model], ids=lambda f: f.__name__)
def test_a_broken_champion_is_refused_counted_and_the_old_model_keeps_serving(
    model_service: tuple[Service, str],
    build: Callable[[Any, Path], Path],
    pick: Callable[[], dict[str, float]],
    tmp_path: Path,
) -> None:
    service, uri = model_service
    registry = _client(uri)
    serving = registry.get_model_version_by_alias(MODEL, "champion")
    broken = registry.create_model_version(
        MODEL, source=str(build(serving, tmp_path / "model")), tags={"candidate": build.__name__}
    )
    admin = {"X-API-Key": API_KEY}
    with service.client() as client:
        before = reload_failures(client)
        registry.set_registered_model_alias(MODEL, "champion", broken.version)
        try:
            with _predicting(service, pick) as hammer:
                hammer.wait_for(acknowledged=20)
                reload = client.post("/admin/reload", headers=admin)
                hammer.wait_for(acknowledged=hammer.count_acknowledged() + 20)
            after = reload_failures(client)
            model = client.get("/model").json()
            ready = client.get("/ready")
        finally:
            registry.set_registered_model_alias(MODEL, "champion", serving.version)
        restored = client.post("/admin/reload", headers=admin)

    assert reload.status_code == 409, reload.text
    assert reload.json()["result"] == "failed"
    assert reload.json()["version"] == str(serving.version)
    assert f"v{broken.version}" in reload.json()["detail"]
    assert after == before + 1
    assert model["version"] == str(serving.version)
    assert ready.status_code == 200 and f"v{broken.version}" in ready.json()["model_error"]
    assert {o.status for o in hammer.outcomes} == {200}
    assert {o.body["model_version"] for o in hammer.outcomes} == {str(serving.version)}
    assert restored.json()["result"] == "unchanged", restored.text


def test_unreachable_tracking_server_during_reload_keeps_the_old_model_serving(
    registry_copy: str,
    data_dir: Path,
    pick: Callable[[], dict[str, float]],
    tmp_path: Path,
) -> None:
    registry = _client(registry_copy)
    serving = registry.get_model_version_by_alias(MODEL, "champion")
    port = free_port()
    tracking = start_mlflow_server(registry_copy, tmp_path, port)
    try:
        env = service_env(
            tracking.url, tmp_path / "log.db", data_dir, HOUSING_RELOAD_INTERVAL_SECONDS="3600"
        )
        with running_service(env, tmp_path) as service, service.client() as client:
            assert client.get("/model").json()["version"] == str(serving.version)
            # A new champion is registered, then the tracking server dies before the reload.
            newer = registry.create_model_version(
                MODEL, source=serving.source, run_id=serving.run_id, tags=serving.tags
            )
            registry.set_registered_model_alias(MODEL, "champion", newer.version)
            os.killpg(tracking.process.pid, signal.SIGKILL)  # the server and its workers
            tracking.process.wait(timeout=10)
            with _predicting(service, pick) as hammer:
                hammer.wait_for(acknowledged=20)
                started = time.monotonic()
                try:
                    refused = client.post(
                        "/admin/reload", headers={"X-API-Key": API_KEY}, timeout=RELOAD_PATIENCE
                    )
                except httpx.ReadTimeout:
                    pytest.fail(
                        f"/admin/reload hung > {RELOAD_PATIENCE} s on a dead tracking server"
                    )
                waited = time.monotonic() - started
                hammer.wait_for(acknowledged=hammer.count_acknowledged() + 20)
            ready = client.get("/ready")

            tracking = start_mlflow_server(registry_copy, tmp_path, port)  # back again
            loaded = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
            now = client.post("/predict", json=pick())
    finally:
        stop_process(tracking.process)

    assert refused.status_code == 409, refused.text
    assert refused.json()["result"] == "failed"
    assert refused.json()["version"] == str(serving.version)
    assert "registry unavailable" in refused.json()["detail"]
    assert waited < RELOAD_PATIENCE
    assert ready.status_code == 200, ready.text
    assert {o.status for o in hammer.outcomes} == {200}
    assert {o.body["model_version"] for o in hammer.outcomes} == {str(serving.version)}
    assert loaded.json() == {
        "result": "loaded",
        "version": str(newer.version),
        "detail": f"{MODEL} v{newer.version} is serving",
    }
    assert now.json()["model_version"] == str(newer.version)
