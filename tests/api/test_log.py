"""The prediction log's storage: schema by migration, WAL, background checkpoints."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

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
