"""`housing simulate` and `housing evaluate` label their own predictions: every feedback they
send quotes the prediction's (or its batch's) feedback_token and is accepted."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))  # the service's test tools

from service_tools import settings_for  # noqa: E402

from api.main import create_app  # noqa: E402
from housing.monitoring.evaluate import load_dataset  # noqa: E402
from housing.monitoring.evaluate import evaluate  # noqa: E402
from housing.monitoring.simulate import simulate  # noqa: E402
from housing.service import log as prediction_log  # noqa: E402


@pytest.fixture(scope="module")
def client(trained_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(trained_registry, tmp_path_factory.mktemp("traffic"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_simulate_sends_feedback_the_api_accepts(client: TestClient, prepared_data_dir) -> None:
    pool = load_dataset(None, prepared_data_dir, 200).frame
    for batch in (1, 5):  # single predictions, and batches (one token for their rows)
        report = simulate(
            client, pool, drift="none", rate=500, duration=0.05, batch=batch, feedback_share=1.0
        )
        assert report.feedback == report.predicted > 0 and report.feedback_failed == 0, report


def test_evaluate_sends_feedback_the_api_accepts(client: TestClient, prepared_data_dir) -> None:
    before = prediction_log.count_rows(client.app.state.runtime.engine, "/feedback")
    report = evaluate(client, load_dataset(None, prepared_data_dir, 10))
    assert report["feedback_sent"] == 10 and report["feedback_failed"] == 0
    after = prediction_log.count_rows(client.app.state.runtime.engine, "/feedback")
    assert after - before == 10
