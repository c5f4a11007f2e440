"""Retention of the prediction log: archive each old day to Parquet once, then delete it.

Rows older than ``HOUSING_LOG_RETENTION_DAYS`` (whole UTC days: a row lives that many days
and less than one more) are deleted, in batches of ~1,000 so a request's commit never waits
long for the write lock; before any row of a day is deleted, every row of that day is written
to ``<HOUSING_LOG_ARCHIVE_DIR>/day=YYYY-MM-DD/rows.parquet`` and recorded in ``log_archive``
with its SHA-256. Predictions with accepted feedback, and that feedback, stay in the log until
``HOUSING_LOG_LABELLED_RETENTION_DAYS`` (retraining reads them; from the archive afterwards).

Of the processes sharing a log, one purges at a time: it claims the ``log_retention_lease``
row (migration 0006) and renews it after every batch; a claimer that died holds nothing once
``LEASE_SECONDS`` have passed. Tables: migration ``0008_log_retention``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time as day_start, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Engine

from housing.service.log import UTCDateTime, metadata, prediction_log, reading

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
"""A purge claim lapses this long after its holder's last renewal (it renews every batch)."""
READ_CHUNK_ROWS = 20_000
"""Rows per read while archiving: each read is short, so none holds the SQLite WAL for long."""
VACUUM_STEP_PAGES = 256
"""Free pages handed back to the file system per step after a purge (1 MiB of 4 KiB pages):
each step moves pages inside the file under the write lock, so steps stay small."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RetentionSettings(BaseSettings):
    """How long the log keeps rows and where the archive goes (``HOUSING_LOG_*``)."""

    model_config = SettingsConfigDict(env_prefix="HOUSING_LOG_", extra="ignore")

    retention_days: int = Field(90, ge=0)
    """Days a row stays in the log database (``0`` keeps everything; nothing is purged)."""
    labelled_retention_days: int = Field(730, ge=0)
    """Days predictions with accepted feedback (and the feedback) stay: retraining reads them.
    ``0`` keeps them for ever; never shorter than ``retention_days``."""
    archive_dir: Path = Path("var/log-archive")
    """Parquet archive, one folder per UTC day (``day=YYYY-MM-DD``)."""
    purge_interval_seconds: float = Field(3600.0, gt=0)
    """How often each API process tries to purge (one of them wins the lease)."""
    batch_rows: int = Field(1000, ge=1)
    """Rows per delete: each batch holds the write lock for a few tens of ms."""
    batch_pause_seconds: float = Field(0.1, ge=0)
    """Pause between two batches, so queued request commits go first."""


log_archive = sa.Table(
    "log_archive",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("archived_at", UTCDateTime(), nullable=False),
)
retention_lease = sa.Table(
    "log_retention_lease",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
    sa.Column("purged_at", UTCDateTime()),
    sa.Column("purged_rows", sa.BigInteger),
)
LEASE_ID = 1


class PurgeClaimedError(Exception):
    """Another process holds the purge lease."""


def new_holder() -> str:
    """A name for this purger, unique even between engines of one process."""
    import socket

    return f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"


# --- the lease -------------------------------------------------------------------------------


def claim(engine: Engine, holder: str, now: datetime) -> bool:
    """Take the purge lease unless someone renewed it within ``LEASE_SECONDS`` (one
    conditional UPDATE: atomic in the database, so one of racing claimers wins)."""
    t = retention_lease
    statement = (
        t.update()
        .where(t.c.id == LEASE_ID, t.c.claimed_at <= now - timedelta(seconds=LEASE_SECONDS))
        .values(holder=holder[:200], claimed_at=now)
    )
    with engine.begin() as connection:
        return connection.execute(statement).rowcount == 1


def renew(connection: sa.Connection, holder: str) -> None:
    """Keep the lease (inside a batch's transaction); raises if another process took it."""
    t = retention_lease
    statement = (
        t.update()
        .where(t.c.id == LEASE_ID, t.c.holder == holder[:200])
        .values(claimed_at=datetime.now(UTC))
    )
    if connection.execute(statement).rowcount != 1:
        raise PurgeClaimedError("the purge lease was taken by another process")


def release(engine: Engine, holder: str, purged_rows: int | None) -> None:
    """Give the lease back (and record a completed purge when ``purged_rows`` is given)."""
    t = retention_lease
    values: dict[str, Any] = {"claimed_at": EPOCH}
    if purged_rows is not None:
        values.update(purged_at=datetime.now(UTC), purged_rows=purged_rows)
    statement = t.update().where(t.c.id == LEASE_ID, t.c.holder == holder[:200]).values(values)
    with engine.begin() as connection:
        connection.execute(statement)


# --- cut-offs --------------------------------------------------------------------------------


def day_floor(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s day."""
    return datetime.combine(moment.astimezone(UTC).date(), day_start(), tzinfo=UTC)


@dataclass(frozen=True)
class Cutoffs:
    """Rows created before ``all_rows`` go (unless labelled); before ``labelled``, all go."""

    all_rows: datetime | None
    labelled: datetime | None


def cutoffs(settings: RetentionSettings, now: datetime) -> Cutoffs:
    """The purge cut-offs at ``now`` (None: nothing is purged on that count)."""
    if settings.retention_days == 0:
        return Cutoffs(None, None)
    unlabelled = day_floor(now - timedelta(days=settings.retention_days))
    if settings.labelled_retention_days == 0:
        return Cutoffs(unlabelled, None)
    days = max(settings.labelled_retention_days, settings.retention_days)
    return Cutoffs(unlabelled, day_floor(now - timedelta(days=days)))


# --- the archive -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivedDay:
    """One day written to Parquet."""

    day: date
    path: Path
    rows: int
    bytes: int
    sha256: str


def archived_days(engine: Engine) -> dict[date, ArchivedDay]:
    """The days recorded in ``log_archive``."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(log_archive)).all()
    return {r.day: ArchivedDay(r.day, Path(r.path), r.rows, r.bytes, r.sha256) for r in rows}


def _archive_columns() -> list[sa.ColumnElement[Any]]:
    """The log's columns as read for the archive: JSON as its text (kept exactly)."""
    return [
        sa.cast(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c
        for c in prediction_log.columns
    ]


def _arrow_schema() -> Any:
    import pyarrow as pa

    def arrow_type(column: sa.Column) -> Any:
        kind = column.type
        if isinstance(kind, UTCDateTime):
            return pa.timestamp("us", tz="UTC")
        if isinstance(kind, sa.Boolean):
            return pa.bool_()
        if isinstance(kind, sa.Integer):
            return pa.int64()
        if isinstance(kind, sa.Float):
            return pa.float64()
        return pa.string()  # text, and JSON as its text

    return pa.schema([(c.name, arrow_type(c)) for c in prediction_log.columns])


def _row_chunks(
    engine: Engine, since: datetime, until: datetime | None
) -> Iterator[list[dict[str, Any]]]:
    """The rows created in [since, until), in (created_at, id) order, a short read at a time."""
    t = prediction_log
    after: tuple[datetime, str] | None = None
    while True:
        query = sa.select(*_archive_columns()).where(t.c.created_at >= since)
        if until is not None:
            query = query.where(t.c.created_at < until)
        if after is not None:
            query = query.where(
                t.c.created_at >= after[0], sa.or_(t.c.created_at > after[0], t.c.id > after[1])
            )
        query = query.order_by(t.c.created_at, t.c.id).limit(READ_CHUNK_ROWS)
        with engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        if not rows:
            return
        yield rows
        after = (rows[-1]["created_at"], rows[-1]["id"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_day(engine: Engine, archive_dir: Path, start: datetime) -> ArchivedDay | None:
    """Write the day's rows to Parquet (atomically) and record it; None if it has no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    folder = archive_dir / f"day={start.date().isoformat()}"
    final, partial = folder / "rows.parquet", folder / "rows.parquet.partial"
    rows = 0
    writer = None
    try:
        for chunk in _row_chunks(engine, start, start + timedelta(days=1)):
            if writer is None:
                folder.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(partial, schema, compression="zstd")
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        return None
    os.replace(partial, final)
    day = ArchivedDay(start.date(), final, rows, final.stat().st_size, _sha256(final))
    values = {
        "day": day.day,
        "path": str(final),
        "rows": rows,
        "bytes": day.bytes,
        "sha256": day.sha256,
        "archived_at": datetime.now(UTC),
    }
    with engine.begin() as connection:
        connection.execute(log_archive.insert().values(values))
    return day


def oldest_row(engine: Engine) -> datetime | None:
    """``created_at`` of the oldest row in the log (one index seek)."""
    with reading(engine) as connection:
        return connection.execute(sa.select(sa.func.min(prediction_log.c.created_at))).scalar()


def archive(engine: Engine, settings: RetentionSettings, now: datetime) -> list[ArchivedDay]:
    """Archive every day that retention would purge and that is not archived yet."""
    cut = cutoffs(settings, now).all_rows
    oldest = oldest_row(engine)
    if cut is None or oldest is None:
        return []
    done = archived_days(engine)
    written: list[ArchivedDay] = []
    start = day_floor(oldest)
    while start < cut:
        if start.date() not in done:
            day = archive_day(engine, settings.archive_dir, start)
            if day is not None:
                written.append(day)
                log.info("archived %s: %d rows, %d bytes", day.day, day.rows, day.bytes)
        start += timedelta(days=1)
    return written


def read_archive(
    archive_dir: Path,
    since: datetime | None = None,
    until: datetime | None = None,
    columns: list[str] | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
) -> Any:
    """The archived rows created in [since, until) as a pyarrow Table (all when unbounded;
    only ``columns``, and only rows passing pyarrow ``filters``, when given)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    wanted = [name for name in schema.names if columns is None or name in columns]
    stamp = pa.timestamp("us", tz="UTC")
    bounds: list[tuple[str, str, Any]] = []
    if since is not None:
        bounds.append(("created_at", ">=", pa.scalar(since, stamp)))
    if until is not None:
        bounds.append(("created_at", "<", pa.scalar(until, stamp)))
    tables = []
    for path in sorted(archive_dir.glob("day=*/rows.parquet")):
        day = date.fromisoformat(path.parent.name.removeprefix("day="))
        start = datetime.combine(day, day_start(), tzinfo=UTC)
        if (since and start + timedelta(days=1) <= since) or (until and start >= until):
            continue
        table = pq.read_table(path, filters=[*bounds, *(filters or [])] or None)
        tables.append(table.select([name for name in wanted if name in table.column_names]))
    if not tables:
        return pa.schema([schema.field(name) for name in wanted]).empty_table()
    return pa.concat_tables(tables, promote_options="default")


def archived_labelled_inputs(archive_dir: Path, limit: int) -> pd.DataFrame:
    """``log.labelled_inputs`` over the archive: retraining still learns from labelled rows
    once they are purged from the log (newest feedback first)."""
    import orjson
    import pyarrow.compute as pc

    from housing.service.log import BATCH, PREDICT, labelled_frame

    labels = read_archive(
        archive_dir,
        columns=[
            *("id", "created_at", "status", "feedback_key", "feedback_for", "actual"),
            "label_source",
        ],
        filters=[("status", "=", 200)],
    )
    labels = labels.filter(pc.is_valid(labels["feedback_key"]))
    labels = labels.sort_by([("created_at", "descending"), ("id", "descending")]).slice(0, limit)
    sources = (
        labels["label_source"].to_pylist()
        if "label_source" in labels.column_names
        else [None] * labels.num_rows
    )
    triples = list(
        zip(labels["feedback_for"].to_pylist(), labels["actual"].to_pylist(), sources, strict=True)
    )
    wanted = sorted({prediction_id.partition("-")[0] for prediction_id, _, _ in triples})
    if not wanted:
        return labelled_frame([], {})
    predicted = read_archive(
        archive_dir,
        columns=["id", "inputs"],
        filters=[("id", "in", wanted), ("endpoint", "in", [PREDICT, BATCH]), ("status", "=", 200)],
    )
    ids, texts = predicted["id"].to_pylist(), predicted["inputs"].to_pylist()
    inputs = {i: orjson.loads(text) for i, text in zip(ids, texts, strict=True) if text}
    return labelled_frame(triples, inputs)


def with_archived_labels(
    live: pd.DataFrame, limit: int, archive_dir: Path | None = None
) -> pd.DataFrame:
    """The log's labelled inputs (newest first) topped up to ``limit`` from the archive, with
    labelled rows purged from the log since."""
    archive_dir = archive_dir or RetentionSettings().archive_dir
    if len(live) >= limit or not any(archive_dir.glob("day=*/rows.parquet")):
        return live
    archived = archived_labelled_inputs(archive_dir, limit)
    archived = archived[~archived["prediction_id"].isin(live["prediction_id"])]
    if archived.empty:
        return live
    return pd.concat([live, archived], ignore_index=True).head(limit)


def export(
    engine: Engine, archive_dir: Path, out: Path, since: datetime | None, until: datetime | None
) -> int:
    """Rows created in [since, until), from the archive and the live log (each row once), to
    ``out`` (Parquet, or CSV when it ends in ``.csv``), oldest first; the number of rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    archived = read_archive(archive_dir, since, until)
    for name in schema.names:  # a column added to the log after a day was archived: nulls
        if name not in archived.column_names:
            archived = archived.append_column(
                schema.field(name), pa.nulls(archived.num_rows, schema.field(name).type)
            )
    archived = archived.select(schema.names).cast(schema)
    live_rows = [row for chunk in _row_chunks(engine, since or EPOCH, until) for row in chunk]
    live = pa.Table.from_pylist(live_rows, schema=schema)
    archived = archived.filter(pc.invert(pc.is_in(archived["id"], live["id"])))
    table = pa.concat_tables([archived, live]).sort_by([("created_at", "ascending")])
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if out.suffix == ".csv":
        pacsv.write_csv(table, partial)
    else:
        pq.write_table(table, partial, compression="zstd")
    os.replace(partial, out)
    return table.num_rows


# --- the purge -------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    """What one purge did."""

    archived: list[ArchivedDay] = field(default_factory=list)
    deleted: int = 0
    kept_labelled: int = 0
    vacuumed_pages: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    """How long each delete batch's transaction took (it holds the write lock that long)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "archived_days": [d.day.isoformat() for d in self.archived],
            "archived_rows": sum(d.rows for d in self.archived),
            "deleted": self.deleted,
            "vacuumed_pages": self.vacuumed_pages,
            "seconds": round(self.seconds, 3),
            "batches": len(self.batch_ms),
            "batch_ms_median": (
                round(statistics.median(self.batch_ms), 1) if self.batch_ms else None
            ),
            "batch_ms_max": round(max(self.batch_ms), 1) if self.batch_ms else None,
        }


def _labelled(t: sa.Table) -> sa.ColumnElement[bool]:
    """Rows retraining reads: accepted feedback, and the predictions it labels (a batch
    prediction's id is ``<request id>-<row>``: a range seek in ``feedback_key``'s index)."""
    f = t.alias("labels")
    labels_this = sa.exists().where(
        sa.or_(
            f.c.feedback_key == t.c.id,
            sa.and_(f.c.feedback_key > t.c.id + "-", f.c.feedback_key < t.c.id + "."),
        )
    )
    return sa.or_(t.c.feedback_key.is_not(None), labels_this)


def _delete_batches(
    engine: Engine,
    settings: RetentionSettings,
    holder: str,
    before: datetime,
    keep_labelled: bool,
    timings: list[float],
) -> int:
    """Delete rows created before ``before`` (but the labelled ones if ``keep_labelled``),
    ``batch_rows`` per transaction, walking ``created_at`` forward past the kept ones."""
    t = prediction_log
    deleted = 0
    after: tuple[datetime, str] | None = None
    while True:
        query = sa.select(t.c.created_at, t.c.id).where(t.c.created_at < before)
        if after is not None:
            query = query.where(
                t.c.created_at >= after[0], sa.or_(t.c.created_at > after[0], t.c.id > after[1])
            )
        if keep_labelled:
            query = query.where(~_labelled(t))
        query = query.order_by(t.c.created_at, t.c.id).limit(settings.batch_rows)
        started = time.perf_counter()
        with engine.begin() as connection:
            renew(connection, holder)
            batch = connection.execute(query).all()
            if batch:
                ids = [row.id for row in batch]
                connection.execute(t.delete().where(t.c.id.in_(ids)))
        timings.append((time.perf_counter() - started) * 1000)
        if not batch:
            return deleted
        deleted += len(batch)
        after = (batch[-1].created_at, batch[-1].id)
        time.sleep(settings.batch_pause_seconds)


def incremental_vacuum(engine: Engine, pause_seconds: float = 0.02) -> int:
    """Hand a SQLite file's free pages back in small steps (files made with
    ``auto_vacuum=INCREMENTAL``; others keep their size until a full VACUUM). Pages freed."""
    if engine.dialect.name != "sqlite":
        return 0
    with engine.connect() as connection:
        if connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() != 2:
            return 0
    freed = 0
    while True:
        with engine.connect() as connection:
            free = int(connection.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
            if free == 0:
                return freed
            connection.rollback()
            # Python's sqlite3 steps a pragma once in execute(), which frees one page;
            # executescript steps it to the end (its own short write transaction).
            raw = connection.connection.driver_connection
            raw.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});")
        freed += min(free, VACUUM_STEP_PAGES)
        time.sleep(pause_seconds)


def purge(
    engine: Engine, settings: RetentionSettings, now: datetime | None = None, holder: str = ""
) -> PurgeResult:
    """Archive, then delete what retention says is past (raises ``PurgeClaimedError`` when
    another process is purging), then shrink the file."""
    now = now or datetime.now(UTC)
    holder = holder or new_holder()
    started = time.monotonic()
    if not claim(engine, holder, datetime.now(UTC)):
        raise PurgeClaimedError("another process is purging this log (log_retention_lease)")
    result = PurgeResult()
    try:
        result.archived = archive(engine, settings, now)
        cut = cutoffs(settings, now)
        if cut.all_rows is not None:
            result.deleted += _delete_batches(
                engine, settings, holder, cut.all_rows, True, result.batch_ms
            )
        if cut.labelled is not None:
            result.deleted += _delete_batches(
                engine, settings, holder, cut.labelled, False, result.batch_ms
            )
        if result.deleted:
            result.vacuumed_pages = incremental_vacuum(engine, settings.batch_pause_seconds)
    except BaseException:
        release(engine, holder, None)
        raise
    release(engine, holder, result.deleted)
    result.seconds = time.monotonic() - started
    return result


# --- what the log holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class LogStats:
    """The log's size and age, and the archive's."""

    rows: int
    bytes: int | None
    oldest: datetime | None
    last_purge: datetime | None
    last_purge_rows: int | None
    archived_days: int
    archived_rows: int
    archived_bytes: int

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "oldest": iso(self.oldest),
            "last_purge": iso(self.last_purge),
            "last_purge_rows": self.last_purge_rows,
            "archived_days": self.archived_days,
            "archived_rows": self.archived_rows,
            "archived_bytes": self.archived_bytes,
        }


def database_bytes(engine: Engine) -> int | None:
    """Bytes the log database takes (SQLite: the file's pages; PostgreSQL: the table)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
            size = connection.exec_driver_sql("PRAGMA page_size").scalar()
            return int(pages) * int(size)
        if engine.dialect.name == "postgresql":
            query = "SELECT pg_total_relation_size('prediction_log')"
            return int(connection.exec_driver_sql(query).scalar())
    return None


def stats(engine: Engine) -> LogStats:
    """Rows, bytes, oldest row, latest purge, and what is archived."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(prediction_log))
        count = int(rows.scalar_one())
        lease = connection.execute(
            sa.select(retention_lease.c.purged_at, retention_lease.c.purged_rows)
        ).one()
        archive_total = connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(log_archive.c.rows), 0),
                sa.func.coalesce(sa.func.sum(log_archive.c.bytes), 0),
            )
        ).one()
    return LogStats(
        rows=count,
        bytes=database_bytes(engine),
        oldest=oldest_row(engine),
        last_purge=lease.purged_at,
        last_purge_rows=lease.purged_rows,
        archived_days=int(archive_total[0]),
        archived_rows=int(archive_total[1]),
        archived_bytes=int(archive_total[2]),
    )


@dataclass(frozen=True)
class RetentionMetrics:
    """Gauges of the log's size and age (on the service's registry, served at /metrics)."""

    rows: Any
    bytes: Any
    oldest: Any
    last_purge: Any
    archived_bytes: Any

    def show(self, figures: LogStats) -> None:
        self.rows.set(figures.rows)
        if figures.bytes is not None:
            self.bytes.set(figures.bytes)
        if figures.oldest is not None:
            self.oldest.set(figures.oldest.timestamp())
        if figures.last_purge is not None:
            self.last_purge.set(figures.last_purge.timestamp())
        self.archived_bytes.set(figures.archived_bytes)


def build_retention_metrics(registry: Any) -> RetentionMetrics:
    """The retention gauges on ``registry``."""
    from prometheus_client import Gauge

    def gauge(name: str, text: str) -> Gauge:
        return Gauge(name, text, registry=registry)

    return RetentionMetrics(
        rows=gauge("housing_log_rows", "Rows in the prediction log"),
        bytes=gauge("housing_log_bytes", "Bytes the prediction log database takes"),
        oldest=gauge("housing_log_oldest_row_timestamp_seconds", "Oldest logged row (Unix time)"),
        last_purge=gauge(
            "housing_log_last_purge_timestamp_seconds", "Latest completed purge (Unix time)"
        ),
        archived_bytes=gauge("housing_log_archive_bytes", "Bytes of Parquet in the log archive"),
    )


def enforce_once(engine: Engine, settings: RetentionSettings, holder: str) -> PurgeResult | None:
    """One background round: purge unless retention is off or another process is purging."""
    if settings.retention_days == 0:
        return None
    try:
        result = purge(engine, settings, holder=holder)
    except PurgeClaimedError:
        return None
    if result.deleted or result.archived:
        log.info("log purge: %s", result.as_dict())
    return result
