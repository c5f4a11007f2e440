"""Reads of the prediction log that stay fast at scale: the indexes of migration 0005 (with
ANALYZE), cursor paging, the time limit on reads (503), and the labelled read skipped when no
feedback was ever accepted. Real SQLite files; the API through its real app."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_tools import API_KEY, feedback_row, settings_for

from api.main import create_app
from housing.features import typical_row
from housing.service import log as prediction_log

READ = {"X-API-Key": API_KEY}  # the log is private: the admin key reads it

NEW_INDEXES = {
    "ix_prediction_log_status_created_at",
    "ix_prediction_log_endpoint_created_at",
    "ix_prediction_log_endpoint_status_created_at",
}


def _row(status: int = 200, endpoint: str = "/predict", **values: Any) -> dict[str, Any]:
    return prediction_log.new_row(
        endpoint, status=status, latency_ms=1.0, inputs=typical_row(), **values
    )


def _upgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    config = prediction_log.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migration_0005_indexes_an_existing_0004_log_and_analyzes_it(tmp_path: Path) -> None:
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    _upgrade(engine, "0004_drift_lease")
    present = {c["name"] for c in sa.inspect(engine).get_columns("prediction_log")}
    old = [c for c in prediction_log.prediction_log.columns if c.name in present - {"feedback_key"}]
    old_table = sa.table("prediction_log", *(sa.column(c.name, c.type) for c in old))
    rows = [_row(200 if i % 10 else 422) for i in range(300)]
    with engine.begin() as connection:
        connection.execute(old_table.insert(), [{c.name: r[c.name] for c in old} for r in rows])
    assert not NEW_INDEXES & {i["name"] for i in sa.inspect(engine).get_indexes("prediction_log")}

    _upgrade(engine, "0007_log_indexes")

    assert NEW_INDEXES <= {i["name"] for i in sa.inspect(engine).get_indexes("prediction_log")}
    with engine.connect() as connection:
        stats = connection.exec_driver_sql(
            "SELECT idx FROM sqlite_stat1 WHERE tbl = 'prediction_log'"
        ).scalars()
        assert NEW_INDEXES <= set(stats)  # ANALYZE ran: the planner knows the indexes' shape
        plan = " ".join(
            str(row[-1])
            for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT * FROM prediction_log WHERE status = 500 "
                "ORDER BY created_at DESC, id DESC LIMIT 10"
            )
        )
    assert "ix_prediction_log_status_created_at" in plan
    prediction_log.migrate(engine)  # the later revisions' columns, for the full-row reads
    assert len(prediction_log.page(engine, limit=500)) == 300
    assert len(prediction_log.page(engine, limit=500, status=422)) == 30
    engine.dispose()


def test_cursor_paging_returns_every_row_exactly_once_under_concurrent_inserts(
    tmp_path: Path,
) -> None:
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.migrate(engine)
    tied = datetime.now(UTC) - timedelta(minutes=5)
    # A third share one instant: the id settles their order.
    rows = [_row(created_at=tied - timedelta(microseconds=i % 3 and i)) for i in range(1200)]
    prediction_log.write_rows(engine, rows)
    stop = threading.Event()
    inserted: list[str] = []

    def insert_meanwhile() -> None:
        while not stop.is_set():
            batch = [_row() for _ in range(20)]
            prediction_log.write_rows(engine, batch)
            inserted.extend(row["id"] for row in batch)

    writer = threading.Thread(target=insert_meanwhile)
    writer.start()
    seen: list[str] = []
    before = None
    try:
        while True:
            page = prediction_log.page(engine, limit=50, before=before)
            seen.extend(row["id"] for row in page)
            if len(page) < 50:
                break
            before = (page[-1]["created_at"], page[-1]["id"])
            time.sleep(0.002)  # let the writer commit between pages
    finally:
        stop.set()
        writer.join()
    assert inserted  # rows were committed while paging
    assert len(seen) == len(set(seen))
    assert {row["id"] for row in rows} <= set(seen)
    engine.dispose()


def test_labelled_predictions_skip_their_query_until_feedback_is_accepted(tmp_path: Path) -> None:
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.migrate(engine)
    prediction_log.write_rows(engine, [_row() for _ in range(50)])
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    assert prediction_log.labelled_predictions(engine, 100).empty
    assert len(statements) == 1 and "feedback_key IS NOT NULL" in statements[0]

    prediction = _row()
    prediction_log.write_rows(engine, [prediction, feedback_row(prediction["id"], 3.0)])
    statements.clear()
    labelled = prediction_log.labelled_predictions(engine, 100)
    assert list(labelled["prediction_id"]) == [prediction["id"]]
    assert len(statements) == 2
    engine.dispose()


def test_a_read_past_the_time_limit_is_stopped(tmp_path: Path) -> None:
    engine = prediction_log.create_log_engine(
        f"sqlite:///{tmp_path / 'log.db'}", read_time_limit=0.05
    )
    prediction_log.migrate(engine)
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
        "SELECT count(*) FROM n"
    )
    started = time.monotonic()
    with pytest.raises(prediction_log.LogReadTimeoutError, match="longer than 0.05 s"):
        with prediction_log.reading(engine) as connection:
            connection.exec_driver_sql(endless).scalar()
    assert time.monotonic() - started < 2
    with prediction_log.reading(engine) as connection:  # the next read on it runs normally
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def _slow_log(folder: Path) -> None:
    """A log where ``status=500`` reads every row: 60,000 rows, the filter indexes dropped."""
    engine = prediction_log.create_log_engine(f"sqlite:///{folder / 'predictions.db'}")
    prediction_log.migrate(engine)
    for _ in range(6):
        prediction_log.write_rows(engine, [_row() for _ in range(10_000)])
    with engine.begin() as connection:
        for index in NEW_INDEXES:
            connection.exec_driver_sql(f"DROP INDEX {index}")
    engine.dispose()


def test_get_predictions_answers_503_when_its_read_is_too_slow(tmp_path: Path) -> None:
    _slow_log(tmp_path)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"  # no model: the log is all this needs
    quick = settings_for(tracking, tmp_path, log_read_timeout_seconds=0.002)
    with TestClient(create_app(quick), headers=READ) as client:
        slow = client.get("/predictions", params={"status": 500})
        assert client.get("/predictions", params={"limit": 5}).status_code == 200
    assert slow.status_code == 503
    assert "HOUSING_LOG_READ_TIMEOUT_SECONDS" in slow.json()["detail"]
    patient = settings_for(tracking, tmp_path, log_read_timeout_seconds=30)
    with TestClient(create_app(patient), headers=READ) as client:
        whole = client.get("/predictions", params={"status": 500})
    assert whole.status_code == 200 and whole.json()["items"] == []


def test_get_predictions_pages_by_cursor_and_caps_offsets(tmp_path: Path) -> None:
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    prediction_log.migrate(engine)
    rows = [_row(422 if i % 4 == 0 else 200) for i in range(230)]
    prediction_log.write_rows(engine, rows)
    engine.dispose()
    settings = settings_for(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    with TestClient(create_app(settings), headers=READ) as client:
        ids, cursor = [], None
        while True:
            params = {"limit": 25, "status": 200, **({"cursor": cursor} if cursor else {})}
            page = client.get("/predictions", params=params).json()
            ids.extend(item["id"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        too_deep = client.get("/predictions", params={"offset": 10_001})
        bad = client.get("/predictions", params={"cursor": "yesterday"})
    accepted = [row for row in rows if row["status"] == 200]
    newest_first = sorted(accepted, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    assert ids == [row["id"] for row in newest_first]
    assert too_deep.status_code == 422
    assert bad.status_code == 422 and "cursor" in str(bad.json()["detail"])
