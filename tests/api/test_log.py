"""The prediction log's storage: schema by migration, WAL, background checkpoints."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from service_tools import feedback_row

from housing.features import typical_row
from housing.service import log as prediction_log


def test_migration_is_idempotent_and_uses_wal(tmp_path: Path) -> None:
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.migrate(engine)
    prediction_log.migrate(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version  # the newest revision (the service's, or a later one built on it)
    engine.dispose()


def test_a_checkpoint_moves_committed_rows_into_the_database_file(tmp_path: Path) -> None:
    engine = prediction_log.create_log_engine(
        f"sqlite:///{tmp_path / 'log.db'}", background_checkpoints=True
    )
    prediction_log.migrate(engine)
    rows = [prediction_log.new_row("/predict", status=200, inputs=typical_row(), latency_ms=1.0)]
    prediction_log.write_rows(engine, rows + [dict(rows[0], id="b" * 32)])

    def rows_in_main_file() -> int:  # the database file alone, as if the WAL were lost
        copy = tmp_path / "copy.db"
        shutil.copy(tmp_path / "log.db", copy)
        try:
            return (
                sqlite3.connect(copy).execute("SELECT count(*) FROM prediction_log").fetchone()[0]
            )
        except sqlite3.OperationalError:  # the table itself is still only in the WAL
            return 0

    assert rows_in_main_file() == 0
    prediction_log.checkpoint(engine)
    assert rows_in_main_file() == 2
    engine.dispose()


def _engine(tmp_path: Path):
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.migrate(engine)
    return engine


def test_a_second_feedback_becomes_a_409_row_without_failing_the_rows_beside_it(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    labelled, fresh = "a" * 32, "b" * 32
    prediction_log.write_rows(engine, [feedback_row(labelled, 1.0)])
    predict = prediction_log.new_row("/predict", status=200, inputs=typical_row(), latency_ms=1.0)
    batch = [predict, feedback_row(labelled, 2.0), feedback_row(fresh, 3.0)]
    batch.append(feedback_row(fresh, 4.0))  # the same prediction twice in one commit
    prediction_log.write_rows(engine, batch)

    assert [row["status"] for row in batch] == [200, 409, 200, 409]
    stored = {row["id"]: row for row in prediction_log.page(engine, limit=10)}
    assert len(stored) == 5
    assert [stored[row["id"]]["status"] for row in batch] == [200, 409, 200, 409]
    refused = stored[batch[1]["id"]]
    assert refused["error"] == prediction_log.feedback_taken(labelled)
    assert refused["inputs"] == {"prediction_id": labelled, "actual": 2.0}
    assert refused["feedback_for"] is None and refused["actual"] is None
    actuals = prediction_log.labelled_predictions(engine, 10).set_index("prediction_id")["actual"]
    assert actuals.to_dict() == {labelled: 1.0, fresh: 3.0}
    engine.dispose()


def test_a_conflict_that_is_not_feedback_still_fails_the_whole_commit(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    predict = prediction_log.new_row("/predict", status=200, inputs=typical_row(), latency_ms=1.0)
    with pytest.raises(sa.exc.IntegrityError):  # the same id twice: a bug, never silenced
        prediction_log.write_rows(engine, [predict, feedback_row("c" * 32, 1.0), dict(predict)])
    assert prediction_log.count_rows(engine) == 0
    engine.dispose()


def test_migration_0003_keeps_the_newest_of_feedback_doubled_before_it(tmp_path: Path) -> None:
    from alembic import command

    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    config = prediction_log.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002_drift")
    doubled, single = "d" * 32, "e" * 32
    rows = [feedback_row(doubled, 1.0), feedback_row(doubled, 2.0), feedback_row(single, 3.0)]
    rows[1]["created_at"] = rows[0]["created_at"] + timedelta(seconds=1)  # the newest
    refused = dict(feedback_row(single, 4.0), status=409)  # a 409 row never gets the key
    later = ("feedback_key", "contributions")  # added by 0003 and by 0005
    before = [c for c in prediction_log.prediction_log.columns if c.name not in later]
    old_table = sa.table("prediction_log", *(sa.column(c.name, c.type) for c in before))
    with engine.begin() as connection:
        for row in [*rows, refused]:
            connection.execute(old_table.insert().values({c.name: row[c.name] for c in before}))
    prediction_log.migrate(engine)

    logged = prediction_log.page(engine, limit=10, endpoint="/feedback")
    assert {row["id"]: row["feedback_key"] for row in logged} == {
        rows[0]["id"]: None,
        rows[1]["id"]: doubled,
        rows[2]["id"]: single,
        refused["id"]: None,
    }
    again = feedback_row(doubled, 5.0)
    prediction_log.write_rows(engine, [again])
    assert again["status"] == 409
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002_drift")
    columns = {column["name"] for column in sa.inspect(engine).get_columns("prediction_log")}
    assert "feedback_key" not in columns and "feedback_for" in columns
    engine.dispose()
