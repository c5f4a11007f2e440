"""The HTTP client's failure mapping and the log tables (pure parts; the live API is exercised
by test_ui_pages)."""

from __future__ import annotations

import socket

import pytest

from frontend.api_types import LogRecord
from frontend.client import ApiClient, field_errors
from frontend.errors import ApiRequestError, ApiUnavailable
from frontend.log_frames import outcome, requests_frame, values_frame
from frontend.settings import UISettings


def closed_port_client() -> ApiClient:
    """A client of a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return ApiClient(UISettings(api_url=f"http://127.0.0.1:{port}"))


def test_a_closed_port_is_reported_as_unavailable_quickly() -> None:
    api = closed_port_client()
    with pytest.raises(ApiUnavailable, match="cannot be reached"):
        api.schema()


def test_a_body_json_cannot_carry_is_refused_before_sending() -> None:
    # Nothing listens on the port: had the client tried to send, it would say "unavailable".
    api = closed_port_client()
    with pytest.raises(ApiRequestError, match="POST /predict/batch cannot be sent as JSON"):
        api.predict_batch([{"MedInc": float("inf")}])


def test_field_errors_read_the_services_shape_and_fastapis() -> None:
    ours = {"detail": [{"field": "AveBedrms", "rule": "at_most_ave_rooms", "message": "too many"}]}
    assert [(e.field, e.rule, e.message) for e in field_errors(ours)] == [
        ("AveBedrms", "at_most_ave_rooms", "too many")
    ]
    fastapi = {"detail": [{"loc": ["body", "MedInc"], "msg": "too big", "type": "less_than"}]}
    assert [(e.field, e.message) for e in field_errors(fastapi)] == [("MedInc", "too big")]
    assert [(e.field, e.message) for e in field_errors({"detail": "bad body"})] == [
        (None, "bad body")
    ]


def record(**values) -> LogRecord:
    base = {"id": "x", "created_at": "2024-01-01T00:00:00Z", "latency_ms": 1.0}
    return LogRecord.model_validate(base | values)


def test_log_tables_count_predictions_not_feedback() -> None:
    records = [
        record(endpoint="/predict", status=200, prediction=2.0, model_version="3"),
        record(endpoint="/predict/batch", status=200, predictions=[1.0, None, 3.0]),
        record(endpoint="/feedback", status=200, prediction=2.0, actual=2.5),
        record(
            endpoint="/predict",
            status=422,
            error=[{"field": "MedInc", "rule": "max", "message": "MedInc too big"}],
        ),
    ]
    requests = requests_frame(records)
    assert requests["rows"].tolist() == [1, 2, 0, 0]
    assert requests["outcome"].tolist() == ["accepted", "accepted", "accepted", "rejected"]
    assert requests["error"].iloc[3] == "MedInc too big"
    assert requests["actual_dollars"].iloc[2] == 250_000.0
    values = values_frame(records)
    assert values["value"].tolist() == [200_000.0, 100_000.0, 300_000.0]


def test_outcome_classes() -> None:
    assert [outcome(s) for s in (200, 413, 422, 429, 500, 503)] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "failed",
        "failed",
    ]


def test_an_answer_of_another_shape_is_a_plain_error() -> None:
    from frontend.api_types import Prediction
    from frontend.client import parse
    from frontend.errors import ApiError

    with pytest.raises(ApiError, match="POST /predict has an unexpected shape"):
        parse(Prediction, {"value": 1.0}, "POST /predict")


def test_the_history_read_pages_by_cursor_and_returns_every_row_once(tmp_path) -> None:
    """The UI client against a real `housing serve` (no model needed for the log): 1,300 rows
    read in pages of 500 while another writer keeps logging newer rows."""
    import threading

    from ui_live import READ_KEY, api_env, free_port, start_api, stop, wait_for

    from housing.features import typical_row
    from housing.service import log as prediction_log

    database = tmp_path / "log.db"
    engine = prediction_log.create_log_engine(f"sqlite:///{database}", timeout_seconds=10)
    prediction_log.migrate(engine)

    def rows(count: int) -> list[dict]:
        made = [
            prediction_log.new_row("/predict", status=200, latency_ms=1.0) for _ in range(count)
        ]
        return [dict(row, inputs=typical_row()) for row in made]

    before = rows(1300)
    prediction_log.write_rows(engine, before)
    env = api_env(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, database)
    port = free_port()
    process = start_api(env, port, tmp_path / "api.log")
    stop_writing = threading.Event()

    def keep_writing() -> None:
        while not stop_writing.wait(0.01):
            prediction_log.write_rows(engine, rows(5))

    writer = threading.Thread(target=keep_writing)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        writer.start()
        api = ApiClient(UISettings(api_url=f"http://127.0.0.1:{port}"))
        read = api.predictions(key=READ_KEY, limit=100_000, status=200)
    finally:
        stop_writing.set()
        if writer.is_alive():
            writer.join()
        stop(process)
        engine.dispose()
    ids = [record.id for record in read]
    assert len(ids) == len(set(ids))
    assert {row["id"] for row in before} <= set(ids)
