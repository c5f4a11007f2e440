"""Retention of the prediction log on real SQLite files: what a purge deletes and keeps, the
Parquet archive it writes first (rows, hashes, once per day), one purger at a time (a real
second process is refused), the file shrinking, retraining reading archived labels."""

from __future__ import annotations

import hashlib
import os
import subprocess  # nosec B404 - runs the project's own CLI
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from service_tools import feedback_row

from housing.features import typical_row
from housing.service import log as prediction_log
from housing.service import retention

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 9, 5, tzinfo=UTC)  # midnight of NOW - 90 days


def _engine(folder: Path) -> sa.Engine:
    engine = prediction_log.create_log_engine(f"sqlite:///{folder / 'log.db'}")
    prediction_log.migrate(engine)
    return engine


def _at(days_ago: float, status: int = 200, endpoint: str = "/predict") -> dict[str, Any]:
    row = prediction_log.new_row(
        endpoint, status=status, latency_ms=1.0, inputs=typical_row(), prediction=2.5
    )
    row["created_at"] = NOW - timedelta(days=days_ago)
    return row


def _batch_at(days_ago: float) -> dict[str, Any]:
    houses = [typical_row(), dict(typical_row(), MedInc=5.0)]
    row = prediction_log.new_row("/predict/batch", status=200, latency_ms=1.0, inputs=houses)
    row.update(created_at=NOW - timedelta(days=days_ago), predictions=[2.0, 3.0])
    return row


def _labelled_log(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """Rows of every age around the cut-off; some old predictions got feedback."""
    old = [_at(d) for d in (120, 100, 95.2, 91, 90.6)] + [_at(93, 422), _at(92, 503)]
    young = [_at(d) for d in (90.4, 89, 30, 1)] + [_at(2, 422)]
    labelled_single, labelled_batch = _at(100.5), _batch_at(96)
    labels = [
        dict(feedback_row(labelled_single["id"], 1.5), created_at=NOW - timedelta(days=99)),
        dict(feedback_row(f"{labelled_batch['id']}-1", 4.5), created_at=NOW - timedelta(days=95)),
    ]
    refused = dict(feedback_row(old[0]["id"], 9.0), status=409, feedback_key=None)
    refused["created_at"] = NOW - timedelta(days=110)
    groups = {
        "old": [*old, refused],
        "young": young,
        "labelled": [labelled_single, labelled_batch, *labels],
    }
    prediction_log.write_rows(engine, [row for rows in groups.values() for row in rows])
    return groups


def _ids(engine: sa.Engine) -> set[str]:
    return {row["id"] for row in prediction_log.page(engine, limit=1000)}


def test_a_purge_deletes_exactly_the_rows_past_the_window_and_keeps_labelled_ones(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    groups = _labelled_log(engine)
    settings = retention.RetentionSettings(
        archive_dir=tmp_path / "archive", batch_rows=3, batch_pause_seconds=0
    )
    result = retention.purge(engine, settings, NOW)

    kept = {row["id"] for row in groups["young"] + groups["labelled"]}
    assert _ids(engine) == kept
    assert result.deleted == len(groups["old"])
    assert all(row["created_at"] < CUTOFF for row in groups["old"])  # the fixture's premise

    # Labelled rows go once they are older than HOUSING_LOG_LABELLED_RETENTION_DAYS.
    shorter = settings.model_copy(update={"labelled_retention_days": 97})
    retention.purge(engine, shorter, NOW)
    labelled_cutoff = datetime(2026, 8, 29, tzinfo=UTC)  # midnight of NOW - 97 days
    survivors = {r["id"] for r in groups["labelled"] if r["created_at"] >= labelled_cutoff}
    assert _ids(engine) == {row["id"] for row in groups["young"]} | survivors
    assert len(survivors) == 2  # the batch prediction (96 days) and its feedback (95 days)
    engine.dispose()


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """An archived row as the log returns it (JSON columns decoded)."""
    json_columns = {
        c.name for c in prediction_log.prediction_log.columns if isinstance(c.type, sa.JSON)
    }
    return {
        name: orjson.loads(value) if name in json_columns and value is not None else value
        for name, value in row.items()
    }


def test_the_archive_holds_exactly_the_deleted_rows_once_with_their_hashes(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    groups = _labelled_log(engine)
    with engine.connect() as connection:
        before = {
            row.id: dict(row._mapping)
            for row in connection.execute(sa.select(prediction_log.prediction_log))
        }
    settings = retention.RetentionSettings(
        archive_dir=tmp_path / "archive", labelled_retention_days=90, batch_pause_seconds=0
    )
    result = retention.purge(engine, settings, NOW)
    deleted = set(before) - _ids(engine)
    assert deleted == {r["id"] for r in groups["old"]} | {r["id"] for r in groups["labelled"]}
    archived = retention.read_archive(settings.archive_dir).to_pylist()
    assert sorted(row["id"] for row in archived) == sorted(deleted)
    for row in archived:
        assert _decoded(row) == before[row["id"]]

    recorded = retention.archived_days(engine)
    assert {d.day for d in result.archived} == set(recorded)
    assert sum(d.rows for d in recorded.values()) == len(deleted)
    for day in recorded.values():
        assert day.path.parent.name == f"day={day.day.isoformat()}"
        assert hashlib.sha256(day.path.read_bytes()).hexdigest() == day.sha256
        assert day.path.stat().st_size == day.bytes
    stamps = {day.path: day.path.stat().st_mtime_ns for day in recorded.values()}
    again = retention.purge(engine, settings, NOW + timedelta(hours=1))
    assert again.archived == [] and again.deleted == 0  # each day is written once
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps

    # Retraining reads the labelled rows the purge took out of the log.
    live = prediction_log.labelled_inputs(engine, 10)
    assert live.empty
    topped = retention.with_archived_labels(live, 10, settings.archive_dir)
    single, batch = groups["labelled"][0], groups["labelled"][1]
    assert list(topped["prediction_id"]) == [f"{batch['id']}-1", single["id"]]
    assert list(topped["MedHouseVal"]) == [4.5, 1.5]
    assert topped.loc[0, "MedInc"] == 5.0
    engine.dispose()


def test_of_purgers_racing_for_the_lease_exactly_one_wins(tmp_path: Path) -> None:
    _engine(tmp_path).dispose()
    engines = [
        prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}", timeout_seconds=10)
        for _ in range(6)
    ]
    now = datetime.now(UTC)
    with ThreadPoolExecutor(len(engines)) as pool:
        claims = list(
            pool.map(lambda i: retention.claim(engines[i], f"p{i}", now), range(len(engines)))
        )
    assert claims.count(True) == 1
    winner = f"p{claims.index(True)}"
    loser = next(f"p{i}" for i, won in enumerate(claims) if not won)
    with engines[0].begin() as connection:
        retention.renew(connection, winner)
        with pytest.raises(retention.PurgeClaimedError):
            retention.renew(connection, loser)
    for engine in engines:
        engine.dispose()


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        HOUSING_DATABASE_URL=f"sqlite:///{folder / 'log.db'}",
        HOUSING_LOG_ARCHIVE_DIR=str(folder / "archive"),
        HOUSING_LOG_RETENTION_DAYS="90",
    )
    command = [sys.executable, "-m", "housing.cli", "log", *args]
    return subprocess.run(  # noqa: S603 (our own CLI, fixed arguments)
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_second_process_does_not_purge_while_the_lease_is_held(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    rows = [_at(200 + i) for i in range(5)]
    prediction_log.write_rows(engine, rows)
    assert retention.claim(engine, "this test", datetime.now(UTC))

    refused = _cli(tmp_path, "purge")
    assert refused.returncode == 3, refused.stderr
    assert "another process is purging" in refused.stderr
    assert _ids(engine) == {row["id"] for row in rows}

    retention.release(engine, "this test", None)
    done = _cli(tmp_path, "purge", "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["deleted"] == 5
    assert _ids(engine) == set()
    stats = orjson.loads(_cli(tmp_path, "stats", "--json").stdout)
    assert stats["rows"] == 0 and stats["archived_rows"] == 5 and stats["last_purge_rows"] == 5
    engine.dispose()


def test_export_reads_archived_and_live_rows_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    old, recent = [_at(150), _at(120)], [_at(5)]
    prediction_log.write_rows(engine, [*old, *recent])
    retention.purge(engine, retention.RetentionSettings(archive_dir=tmp_path / "archive"), NOW)
    since = (NOW - timedelta(days=130)).replace(tzinfo=None).isoformat()
    exported = _cli(tmp_path, "export", "--since", since, "--out", str(tmp_path / "out.parquet"))
    assert exported.returncode == 0, exported.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "out.parquet")
    assert table["id"].to_pylist() == [old[1]["id"], recent[0]["id"]]
    backwards = _cli(
        tmp_path,
        "export",
        "--since",
        "2026-02-01",
        "--until",
        "2026-01-01",
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert backwards.returncode == 1 and "--since must be before --until" in backwards.stderr
    engine.dispose()


def test_a_new_log_file_shrinks_after_a_purge(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2  # incremental
    for start in range(0, 3000, 500):
        prediction_log.write_rows(engine, [_at(300 - i / 100) for i in range(start, start + 500)])
    prediction_log.write_rows(engine, [_at(1) for _ in range(100)])
    full = retention.database_bytes(engine)
    result = retention.purge(
        engine, retention.RetentionSettings(archive_dir=tmp_path / "a", batch_rows=1000), NOW
    )
    assert result.deleted == 3000 and result.vacuumed_pages > 0
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
    assert retention.database_bytes(engine) < full / 3
    figures = retention.stats(engine)
    assert figures.rows == 100 and figures.last_purge is not None
    assert figures.oldest == NOW - timedelta(days=1)
    engine.dispose()


def test_the_size_gauges_show_the_logs_figures(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    engine = _engine(tmp_path)
    rows = [_at(200), _at(3), _at(1)]
    prediction_log.write_rows(engine, rows)
    retention.purge(engine, retention.RetentionSettings(archive_dir=tmp_path / "a"), NOW)
    registry = CollectorRegistry()
    retention.build_retention_metrics(registry).show(retention.stats(engine))

    def value(name: str) -> float | None:
        return registry.get_sample_value(name)

    assert value("housing_log_rows") == 2
    assert value("housing_log_bytes") == retention.database_bytes(engine)
    assert value("housing_log_oldest_row_timestamp_seconds") == rows[1]["created_at"].timestamp()
    assert value("housing_log_last_purge_timestamp_seconds") > NOW.timestamp()
    assert value("housing_log_archive_bytes") == (
        sum(day.bytes for day in retention.archived_days(engine).values())
    )
    engine.dispose()


def test_export_reads_days_archived_before_a_column_was_added(tmp_path: Path) -> None:
    """Other changes add columns to the log: a day archived before lacks them (nulls)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    engine = _engine(tmp_path)
    schema = retention._arrow_schema()
    older = pa.schema([field for field in schema if field.name != "feedback_key"])
    row = dict.fromkeys(older.names) | {
        "id": "a" * 32,
        "created_at": datetime(2026, 1, 1, 1, tzinfo=UTC),
        "endpoint": "/predict",
        "status": 200,
        "latency_ms": 1.0,
    }
    day = tmp_path / "archive" / "day=2026-01-01"
    day.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row], schema=older), day / "rows.parquet")
    out = tmp_path / "out.parquet"
    assert retention.export(engine, tmp_path / "archive", out, None, None) == 1
    exported = pq.read_table(out).to_pylist()
    assert exported[0]["id"] == "a" * 32 and exported[0]["feedback_key"] is None
    engine.dispose()
