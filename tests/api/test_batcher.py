"""The micro-batcher on the real champion and a real SQLite log (no HTTP)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from housing.features import FEATURE_NAMES, typical_row
from housing.service import log as prediction_log
from housing.service.batcher import (
    Batcher,
    LogUnavailableError,
    ModelUnavailableError,
    PredictionFailedError,
)
from housing.service.metrics import build_metrics
from housing.service.model import LoadedModel, ModelHolder
from housing.service.settings import ServiceSettings


def houses(count: int) -> np.ndarray:
    base = np.array([list(typical_row().values())])
    rows = np.repeat(base, count, axis=0)
    rows[:, 0] = np.linspace(1.0, 12.0, count)  # MedInc varies, so do the predictions
    return rows


def setup(tmp_path: Path, pipeline, *, timeout: float = 2.0, inline: bool = False):
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}", timeout)
    prediction_log.migrate(engine)
    metrics = build_metrics()
    holder = ModelHolder(ServiceSettings(), metrics)
    if pipeline is not None:
        holder.current = LoadedModel("california-housing", "7", "champion", pipeline)
    return engine, metrics, Batcher(engine, holder, metrics, inline=inline)


def sample(metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


@pytest.mark.parametrize("inline", [False, True])
def test_concurrent_requests_share_one_predict_and_one_commit(
    tmp_path: Path, reference_model, inline: bool
) -> None:
    engine, metrics, batcher = setup(tmp_path, reference_model, inline=inline)
    features = houses(24)

    async def scenario() -> list:
        await batcher.start()
        futures = [
            batcher.predict(
                prediction_log.new_row("/predict", status=200), 0.0, features[i : i + 1]
            )
            for i in range(len(features))
        ]
        results = await asyncio.gather(*futures)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    truth = reference_model.predict(pd.DataFrame(features, columns=list(FEATURE_NAMES)))
    assert [float(r.values[0]) for r in results] == pytest.approx(truth.tolist(), rel=1e-12)
    assert sample(metrics, "housing_batch_requests_count") == 1
    assert sample(metrics, "housing_log_write_seconds_count") == 1
    rows = prediction_log.page(engine, limit=100)
    assert len(rows) == 24 and {r["model_version"] for r in rows} == {"7"}
    assert sorted(r["prediction"] for r in rows) == pytest.approx(sorted(truth.tolist()))


def test_a_batch_is_acknowledged_only_once_committed(tmp_path: Path, reference_model) -> None:
    engine, _, batcher = setup(tmp_path, reference_model, timeout=0.2)
    path = tmp_path / "log.db"

    async def attempt() -> object:
        await batcher.start()
        future = batcher.predict(prediction_log.new_row("/predict", status=200), 0.0, houses(1))
        try:
            return await future
        except LogUnavailableError as exc:
            return exc
        finally:
            await batcher.stop()

    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        refused = asyncio.run(attempt())
    finally:
        blocker.rollback()
        blocker.close()
    assert isinstance(refused, LogUnavailableError)
    assert prediction_log.count_rows(engine) == 0  # nothing acknowledged, nothing half-written
    _, _, batcher = setup(tmp_path, reference_model)
    assert not isinstance(asyncio.run(attempt()), Exception)  # the lock is gone: served again
    assert prediction_log.count_rows(engine) == 1


def test_without_a_model_requests_are_logged_as_503(tmp_path: Path) -> None:
    engine, _, batcher = setup(tmp_path, None)

    async def scenario() -> BaseException | None:
        await batcher.start()
        try:
            await batcher.predict(prediction_log.new_row("/predict", status=200), 0.0, houses(1))
        except ModelUnavailableError as exc:
            return exc
        finally:
            await batcher.stop()
        return None

    assert isinstance(asyncio.run(scenario()), ModelUnavailableError)
    (row,) = prediction_log.page(engine, limit=5)
    assert row["status"] == 503 and row["error"] == "no model loaded yet"


def test_a_failing_model_fails_its_batch_but_every_row_is_logged(tmp_path: Path) -> None:
    unfitted = Pipeline([("model", LinearRegression())])  # predict raises NotFittedError
    engine, _, batcher = setup(tmp_path, unfitted)

    async def scenario() -> list:
        await batcher.start()
        futures = [
            batcher.predict(prediction_log.new_row("/predict", status=200), 0.0, houses(1)),
            batcher.record(prediction_log.new_row("/predict", status=422), 0.0),
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        await batcher.stop()
        return results

    failed, recorded = asyncio.run(scenario())
    assert isinstance(failed, PredictionFailedError) and recorded is None
    statuses = sorted(r["status"] for r in prediction_log.page(engine, limit=5))
    assert statuses == [422, 500]
