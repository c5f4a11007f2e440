"""The prediction log: one row per request to predict, batch and feedback, whatever its outcome.

SQLAlchemy Core on any URL (a SQLite file by default, in WAL mode with ``synchronous=NORMAL``:
a commit survives the process being killed, which is what acknowledging a request promises).
The schema is Alembic's (``migrations/``), upgraded on start. Monitoring reads the log through
``recent_inputs`` and ``labelled_predictions``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.types import TypeDecorator

from housing.features import FEATURE_NAMES

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
PREDICT, BATCH, FEEDBACK = "/predict", "/predict/batch", "/feedback"
LOGGED_ENDPOINTS = (PREDICT, BATCH, FEEDBACK)
RAW_BODY_LIMIT = 2000
"""Characters of a non-JSON body kept in the log (enough to see what a client sent)."""


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

prediction_log = sa.Table(
    "prediction_log",
    metadata,
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("endpoint", sa.String(32), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("inputs", sa.JSON(none_as_null=True)),
    sa.Column("raw_body", sa.Text),
    sa.Column("prediction", sa.Float),
    sa.Column("predictions", sa.JSON(none_as_null=True)),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(32)),
    sa.Column("error", sa.JSON(none_as_null=True)),
    sa.Column("feedback_for", sa.String(48), index=True),
    sa.Column("actual", sa.Float),
    sa.Column("predicted_at", UTCDateTime()),
)
"""``feedback_for``, ``actual`` and ``predicted_at`` are set on /feedback rows only."""

heartbeat = sa.Table(
    "service_heartbeat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("beat_at", UTCDateTime()),
)
"""One row rewritten by the readiness probe: proof that the log accepts writes."""

COLUMNS = tuple(c.name for c in prediction_log.columns)


def new_id() -> str:
    """A request/prediction id (32 hex digits)."""
    return uuid.uuid4().hex


def new_row(endpoint: str, request_id: str | None = None, **values: Any) -> dict[str, Any]:
    """A complete log row (every column present, as executemany needs)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(id=request_id or new_id(), created_at=datetime.now(UTC), endpoint=endpoint)
    row.update(values)
    return row


def raw_text(body: bytes | str | None) -> str | None:
    """A body that is not JSON, as text for the log (truncated)."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text[:RAW_BODY_LIMIT]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


BACKGROUND_AUTOCHECKPOINT_PAGES = 10_000
"""With background checkpoints, a commit still checkpoints past this many WAL pages (~40 MB):
under steady load the WAL never empties by itself, and this bounds its size."""


def _sqlite_pragmas(background_checkpoints: bool) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if background_checkpoints:
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKGROUND_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    return configure


def create_log_engine(
    url: str, timeout_seconds: float = 2.0, *, background_checkpoints: bool = False
) -> Engine:
    """An engine for the log; a SQLite file gets its folder, WAL and a busy timeout.

    By default SQLite checkpoints (copies the WAL into the database, with an fsync) inside
    the commit that fills 1,000 pages, stalling that batch by 10+ ms. With
    ``background_checkpoints`` the owner calls ``checkpoint`` every second from a thread
    instead, so requests do not wait for it.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": timeout_seconds, "check_same_thread": False}
    engine = sa.create_engine(parsed, **kwargs)
    if sqlite:
        sa.event.listen(engine, "connect", _sqlite_pragmas(background_checkpoints))
    return engine


def checkpoint(engine: Engine) -> None:
    """Copy a SQLite WAL into the database without blocking writers (no-op elsewhere)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def alembic_config(engine: Engine):
    """Alembic's configuration for the log's migrations (also for writing new revisions)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (idempotent)."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def write_rows(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` in one transaction: all are committed when this returns."""
    with engine.begin() as connection:
        connection.execute(prediction_log.insert(), list(rows))


def probe(engine: Engine) -> None:
    """Commit a write (raises when the log cannot be written)."""
    with engine.begin() as connection:
        connection.execute(heartbeat.update().values(beat_at=datetime.now(UTC)))


def count_rows(engine: Engine, endpoint: str | None = None) -> int:
    """Rows in the log (for one endpoint when given)."""
    query = sa.select(sa.func.count()).select_from(prediction_log)
    if endpoint is not None:
        query = query.where(prediction_log.c.endpoint == endpoint)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def page(
    engine: Engine,
    *,
    limit: int,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    status: int | None = None,
    endpoint: str | None = None,
) -> list[dict[str, Any]]:
    """Log rows newest first, filtered by time range [since, until), status and endpoint."""
    t = prediction_log
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id.desc())
    if since is not None:
        query = query.where(t.c.created_at >= since)
    if until is not None:
        query = query.where(t.c.created_at < until)
    if status is not None:
        query = query.where(t.c.status == status)
    if endpoint is not None:
        query = query.where(t.c.endpoint == endpoint)
    with engine.connect() as connection:
        result = connection.execute(query.limit(limit).offset(offset))
        return [dict(row._mapping) for row in result]


@dataclass(frozen=True)
class LoggedPrediction:
    """A successful prediction found in the log."""

    prediction_id: str
    value: float
    created_at: datetime
    model_version: str | None


def find_prediction(engine: Engine, prediction_id: str) -> LoggedPrediction | None:
    """The prediction behind an id from /predict (``<id>``) or /predict/batch (``<id>-<row>``)."""
    request_id, _, index = prediction_id.partition("-")
    t = prediction_log
    columns = (t.c.prediction, t.c.predictions, t.c.created_at, t.c.model_version)
    endpoint = BATCH if index else PREDICT
    query = sa.select(*columns).where(
        t.c.id == request_id, t.c.endpoint == endpoint, t.c.status == 200
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    if not index:
        value = row.prediction
    else:
        values = row.predictions or []
        position = int(index)
        value = values[position] if position < len(values) else None
    if value is None:
        return None
    return LoggedPrediction(prediction_id, float(value), row.created_at, row.model_version)


def feedback_exists(engine: Engine, prediction_id: str) -> bool:
    """Whether feedback for ``prediction_id`` was already recorded."""
    t = prediction_log
    query = sa.select(t.c.id).where(
        t.c.feedback_for == prediction_id, t.c.endpoint == FEEDBACK, t.c.status == 200
    )
    with engine.connect() as connection:
        return connection.execute(query.limit(1)).first() is not None


def recent_inputs(engine: Engine, limit: int) -> pd.DataFrame:
    """The 8 features of the last ``limit`` predicted houses (batch rows expanded), newest first."""
    t = prediction_log
    query = (
        sa.select(t.c.endpoint, t.c.inputs, t.c.predictions)
        .where(t.c.endpoint.in_((PREDICT, BATCH)), t.c.status == 200)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
    )
    houses: list[dict[str, Any]] = []
    offset = 0
    with engine.connect() as connection:
        while len(houses) < limit:
            rows = connection.execute(query.limit(limit).offset(offset)).all()
            for row in rows:
                if row.endpoint == PREDICT:
                    houses.append(row.inputs)
                else:  # a batch: keep the rows that were predicted, in request order
                    predicted = row.predictions or []
                    houses.extend(
                        house
                        for house, value in zip(row.inputs or [], predicted, strict=False)
                        if value is not None
                    )
            if len(rows) < limit:
                break
            offset += limit
    frame = pd.DataFrame(houses[:limit], columns=list(FEATURE_NAMES))
    return frame.astype("float64")


def labelled_predictions(engine: Engine, limit: int) -> pd.DataFrame:
    """Predictions that got feedback: ``prediction``, ``actual``, ``created_at`` (newest first).

    ``created_at`` is when the prediction was made; ``model_version`` and ``prediction_id``
    come along. If one prediction got feedback twice (a race), the newest feedback counts.
    """
    t = prediction_log
    query = (
        sa.select(
            t.c.feedback_for.label("prediction_id"),
            t.c.prediction,
            t.c.actual,
            t.c.predicted_at.label("created_at"),
            t.c.model_version,
        )
        .where(t.c.endpoint == FEEDBACK, t.c.status == 200)
        .order_by(t.c.created_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    columns = ["prediction", "actual", "created_at", "model_version", "prediction_id"]
    frame = pd.DataFrame(rows, columns=columns).drop_duplicates("prediction_id", keep="first")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame = frame.sort_values("created_at", ascending=False, kind="stable")
    return frame.reset_index(drop=True).astype({"prediction": "float64", "actual": "float64"})
