"""The prediction log: one row per request to predict, batch and feedback, whatever its outcome.

SQLAlchemy Core on any URL (a SQLite file by default, in WAL mode with ``synchronous=NORMAL``:
a commit survives the process being killed, which is what acknowledging a request promises).
The schema is Alembic's (``migrations/``), upgraded on start. Monitoring reads the log through
``recent_inputs`` and ``labelled_predictions``; retraining through ``labelled_inputs``.

Logged text holds no NUL character (PostgreSQL's ``text`` refuses it) and no lone surrogate (not
encodable as UTF-8): one hostile body must not fail the commit it shares with other requests.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
import uuid6
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.types import TypeDecorator

from housing.features import FEATURE_NAMES

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
PREDICT, BATCH, FEEDBACK = "/predict", "/predict/batch", "/feedback"
EXPLAIN = "/explain"
LOGGED_ENDPOINTS = (PREDICT, BATCH, FEEDBACK, EXPLAIN)
RAW_BODY_LIMIT = 2000
"""UTF-8 bytes of a non-JSON body kept in the log (enough to see what a client sent)."""


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
    sa.Column("feedback_key", sa.String(48)),
    sa.Column("label_source", sa.String(16)),
    sa.Column("feedback_token_sha256", sa.String(64)),
    sa.Column("interval_level", sa.Float),
    sa.Column("interval_low", sa.Float),
    sa.Column("interval_high", sa.Float),
    sa.Column("intervals", sa.JSON(none_as_null=True)),
    sa.Column("contributions", sa.JSON(none_as_null=True)),
    sa.Index("ux_prediction_log_feedback_key", "feedback_key", unique=True),
    # Migration 0007_log_indexes: the filters of GET /predictions and the labelled reads seek.
    sa.Index("ix_prediction_log_status_created_at", "status", "created_at"),
    sa.Index("ix_prediction_log_endpoint_created_at", "endpoint", "created_at"),
    sa.Index("ix_prediction_log_endpoint_status_created_at", "endpoint", "status", "created_at"),
)
"""``feedback_for``, ``actual`` and ``predicted_at`` are set on /feedback rows only.
``feedback_key`` is ``feedback_for`` on accepted feedback, and unique: a prediction gets one.
``label_source`` says who sent a feedback's label: ``anonymous``, ``labeller`` or ``admin``
(only the last two may train, ``housing.retrain``).
``feedback_token_sha256``: on predictions, the hash of the token /feedback must quote.
``contributions`` is set on /explain rows only: ``{"base_value": .., player: value, ...}``."""

heartbeat = sa.Table(
    "service_heartbeat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("beat_at", UTCDateTime()),
)
"""One row rewritten by the readiness probe: proof that the log accepts writes."""

COLUMNS = tuple(c.name for c in prediction_log.columns)


def new_id() -> str:
    """A request/prediction id (32 hex digits): a UUIDv7, time-ordered, so new rows land at the
    end of the primary key's B-tree instead of on random pages (half the WAL per row)."""
    return uuid6.uuid7().hex


def new_row(endpoint: str, request_id: str | None = None, **values: Any) -> dict[str, Any]:
    """A complete log row (every column present, as executemany needs)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(id=request_id or new_id(), created_at=datetime.now(UTC), endpoint=endpoint)
    row.update(values)
    return row


NUL_SIGN = "\u2400"
"""Logged in place of a NUL character ("␀"): PostgreSQL's text types cannot hold NUL."""


def raw_text(body: bytes | str | None) -> str | None:
    """A body that is not JSON, as text for the log (truncated; NUL shown as "␀", what is not
    UTF-8 as U+FFFD or "?")."""
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body[: RAW_BODY_LIMIT * 4]  # decoding all of a 1 MB body is not needed
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body[:RAW_BODY_LIMIT]
    text = text[:RAW_BODY_LIMIT].replace("\x00", NUL_SIGN)
    return text.encode("utf-8", "replace")[:RAW_BODY_LIMIT].decode("utf-8", "ignore")


JSON_DEPTH_LIMIT = 200
"""Nesting kept in a logged body (orjson stops at 255); deeper parts are logged as a marker."""


def _json_dumps(value: Any) -> str:
    try:
        text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except orjson.JSONEncodeError:
        # A client's JSON may hold what orjson refuses (integers beyond 64 bits, lone UTF-16
        # surrogates, nesting deeper than 255): the row must be written all the same, and
        # one bad row must not fail the commit it shares with other requests' rows.
        text = orjson.dumps(_loggable(value, 0), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return _NUL_ESCAPE.sub(_NUL_SIGN_ESCAPE, text) if "\\u0000" in text else text


_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""``\\u0000`` escaping a NUL in JSON text (after an even number of backslashes): PostgreSQL's
``json`` stores it but cannot turn it into text (``->>``), and ``jsonb`` refuses it."""
_NUL_SIGN_ESCAPE = r"\1\\u2400"


def _loggable(value: Any, depth: int) -> Any:
    """``value`` with what orjson cannot write replaced: big integers by floats (or text),
    lone surrogates by "?", nesting beyond ``JSON_DEPTH_LIMIT`` by a marker string."""
    if depth >= JSON_DEPTH_LIMIT:
        return "<nested too deeply to log>"
    if isinstance(value, dict):
        return {_loggable(str(k), depth): _loggable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_loggable(item, depth + 1) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value) if abs(value) < 10**308 else str(value)
    return value


def _json_loads(value: Any) -> Any:
    """SQLite's JSON columns have numeric affinity: a logged body that is a bare number comes
    back as that number, not as JSON text."""
    return value if isinstance(value, int | float) else orjson.loads(value)


BACKGROUND_AUTOCHECKPOINT_PAGES = 10_000
"""With background checkpoints, a commit still checkpoints past this many WAL pages (~40 MB):
under steady load the WAL never empties by itself, and this bounds its size."""


JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""A WAL that grew past this (one long read held it) is truncated back after a checkpoint."""


def _sqlite_pragmas(background_checkpoints: bool) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Only on a new, empty file (it cannot change once tables exist, and setting it writes,
        # which a read-only file refuses): purged pages can then be handed back to the file
        # system in small steps (``PRAGMA incremental_vacuum``).
        if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if background_checkpoints:
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKGROUND_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    return configure


def create_log_engine(
    url: str,
    timeout_seconds: float = 2.0,
    *,
    background_checkpoints: bool = False,
    read_time_limit: float | None = None,
) -> Engine:
    """An engine for the log; a SQLite file gets its folder, WAL and a busy timeout.

    With ``read_time_limit`` every read of this module through the engine is stopped after that
    many seconds (``LogReadTimeoutError``): a long read on SQLite keeps the WAL from being
    checkpointed (it grows, and every writer slows down) for as long as it runs.

    By default SQLite checkpoints (copies the WAL into the database, with an fsync) inside
    the commit that fills 1,000 pages, stalling that batch by 10+ ms. With
    ``background_checkpoints`` the owner calls ``checkpoint`` every second from a thread
    instead, so requests do not wait for it.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": timeout_seconds, "check_same_thread": False}
    engine = sa.create_engine(parsed, **kwargs)
    if sqlite:
        sa.event.listen(engine, "connect", _sqlite_pragmas(background_checkpoints))
        sa.event.listen(engine, "handle_error", _reopen_when_read_only)
    if read_time_limit is not None:
        _READ_LIMITS[engine] = read_time_limit
    return engine


class LogReadTimeoutError(Exception):
    """A read of the log ran past the engine's ``read_time_limit`` and was stopped."""


_READ_LIMITS: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()
PROGRESS_STEPS = 20_000
"""SQLite virtual-machine steps between two looks at the clock during a timed read."""
QUERY_CANCELED = "57014"
"""PostgreSQL's SQLSTATE for a statement stopped by ``statement_timeout``."""


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for reads, stopped once the engine's ``read_time_limit`` has passed
    (SQLite: a progress handler interrupts the statement; PostgreSQL: ``statement_timeout``
    for this transaction)."""
    limit = _READ_LIMITS.get(engine)
    with engine.connect() as connection:
        if limit is None:
            yield connection
            return
        with _time_limited(connection, limit):
            yield connection


@contextlib.contextmanager
def _time_limited(connection: sa.Connection, seconds: float) -> Iterator[None]:
    name = connection.dialect.name
    raw = connection.connection.driver_connection if name == "sqlite" else None
    if raw is not None:
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    elif name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
    try:
        yield
    except sa.exc.OperationalError as exc:
        stopped = "interrupted" in str(exc.orig) if raw is not None else False
        stopped = stopped or getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED
        if not stopped:
            raise
        raise LogReadTimeoutError(
            f"reading the prediction log took longer than {seconds:g} s and was stopped "
            "(HOUSING_LOG_READ_TIMEOUT_SECONDS); narrow the time range or the filters"
        ) from None
    finally:
        if raw is not None:
            raw.set_progress_handler(None, 0)


_READ_ONLY: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines whose SQLite file answered "readonly database": reopened before their next write."""


def _reopen_when_read_only(context: Any) -> None:
    """A connection SQLite opened on a read-only file stays read-only after the file becomes
    writable, and so does one opened while another is still open: on that error, close this
    connection (a "disconnect") and every idle one, and reopen before the next write."""
    if "readonly database" in str(context.original_exception):
        context.is_disconnect = True
        context.engine.dispose()
        _READ_ONLY.add(context.engine)


def _reopen_if_read_only(engine: Engine) -> None:
    """Before a write on an engine that met a read-only file: free every closed connection.

    A connection whose statement failed is only closed for good once the failure's traceback
    is garbage (reference cycles: only the cyclic collector frees them); until then SQLite
    keeps the file's shared-memory index open, read-only, for every new connection, and under
    steady traffic the log would never recover. Collecting first, then disposing, lets the next
    connection open the file afresh. Costs a collection per failed write, and nothing otherwise.
    """
    if engine in _READ_ONLY:
        _READ_ONLY.discard(engine)
        gc.collect()
        engine.dispose()


def checkpoint(engine: Engine) -> None:
    """Copy a SQLite WAL into the database without blocking writers (no-op elsewhere)."""
    if engine.dialect.name == "sqlite":
        _reopen_if_read_only(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def optimize(engine: Engine) -> None:
    """Let SQLite refresh the planner's statistics where they went stale (``PRAGMA optimize``,
    cheap; run periodically: the indexes of migration 0005 need them to be chosen well)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA optimize")


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


FEEDBACK_ATTEMPTS = 3
"""Retries of a batch whose feedback keys other writers take between its check and insert."""
ACCEPTED_FEEDBACK_COLUMNS = (
    "feedback_key", "feedback_for", "actual", "prediction", "predicted_at", "model_version",
)  # fmt: skip
"""What a feedback row holds only when it was accepted."""


def feedback_taken(prediction_id: str) -> str:
    """The 409 detail for feedback on a prediction that has some already."""
    return f"feedback for {prediction_id!r} was recorded already"


def write_rows(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` in one transaction: all are committed when this returns.

    Accepted feedback carries a ``feedback_key`` (unique). A row whose key is taken, by a row
    committed before or by an earlier one of ``rows``, is turned into its request's 409 row, in
    place (``status`` tells the caller), and committed with the others: two concurrent feedbacks
    for one prediction cannot both be accepted, nor fail the requests sharing their commit.
    """
    _reopen_if_read_only(engine)
    for attempt in range(FEEDBACK_ATTEMPTS + 1):
        try:
            with engine.begin() as connection:
                if attempt:  # the first try failed on a key: find the taken ones and retry
                    _refuse_taken_feedback(connection, rows)
                connection.execute(prediction_log.insert(), list(rows))
            return
        except sa.exc.IntegrityError:
            keyed = any(row.get("feedback_key") for row in rows)
            if not keyed or attempt == FEEDBACK_ATTEMPTS:
                raise


def _refuse_taken_feedback(connection: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Turn the feedback rows whose key is taken into 409 rows (the first one of ``rows`` with
    a free key keeps it)."""
    keyed = [row for row in rows if row.get("feedback_key")]
    key = prediction_log.c.feedback_key
    wanted = sorted({row["feedback_key"] for row in keyed})
    taken: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        query = sa.select(key).where(key.in_(wanted[start : start + 500]))
        taken.update(connection.execute(query).scalars())
    for row in keyed:
        prediction_id = row["feedback_key"]
        if prediction_id not in taken:
            taken.add(prediction_id)
            continue
        # As the route logs a 409 it finds before queueing: the request's inputs and the error.
        row.update(dict.fromkeys(ACCEPTED_FEEDBACK_COLUMNS))
        row.update(status=409, error=feedback_taken(prediction_id))


def probe(engine: Engine) -> None:
    """Commit a write (raises when the log cannot be written)."""
    _reopen_if_read_only(engine)
    with engine.begin() as connection:
        connection.execute(heartbeat.update().values(beat_at=datetime.now(UTC)))


def count_rows(engine: Engine, endpoint: str | None = None) -> int:
    """Rows in the log (for one endpoint when given)."""
    query = sa.select(sa.func.count()).select_from(prediction_log)
    if endpoint is not None:
        query = query.where(prediction_log.c.endpoint == endpoint)
    with reading(engine) as connection:
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
    before: tuple[datetime, str] | None = None,
) -> list[dict[str, Any]]:
    """Log rows newest first, filtered by time range [since, until), status and endpoint.

    ``before`` is a cursor, the (``created_at``, ``id``) of the last row of the previous page:
    the page starts right after it, found by one index seek however deep it is (an ``offset``
    walks every row it skips), and rows logged meanwhile shift nothing.
    """
    t = prediction_log
    query = _filtered(sa.select(t), since, until, status, endpoint, before)
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc())
    with reading(engine) as connection:
        result = connection.execute(query.limit(limit).offset(offset))
        return [dict(row._mapping) for row in result]


ROW_OVERHEAD_BYTES = 300
"""A log row's fixed columns (ids, times, numbers) in a JSON answer, about."""


def bounded_page(
    engine: Engine,
    *,
    limit: int,
    max_bytes: int,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    status: int | None = None,
    endpoint: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """As ``page``, cut to the first rows whose stored JSON and text fit in ``max_bytes`` (one
    at least); also whether more rows follow. The database sums the sizes first, so a page of
    large batch rows is never loaded whole to be cut."""
    t = prediction_log
    order = (t.c.created_at.desc(), t.c.id.desc())
    stored = [
        sa.func.coalesce(sa.func.length(sa.cast(column, sa.Text)), 0)
        for column in (
            *(t.c.inputs, t.c.raw_body, t.c.predictions, t.c.error),
            *(t.c.intervals, t.c.contributions),
        )
    ]
    sizes = sa.select(t.c.id, sum(stored[1:], stored[0]))
    sizes = _filtered(sizes, since, until, status, endpoint, before)
    with reading(engine) as connection:
        found = connection.execute(sizes.order_by(*order).limit(limit + 1).offset(offset)).all()
        wanted: list[str] = []
        used = 0
        for ident, size in found[:limit]:
            used += int(size) + ROW_OVERHEAD_BYTES
            if wanted and used > max_bytes:
                break
            wanted.append(ident)
        if not wanted:
            return [], False
        rows = connection.execute(sa.select(t).where(t.c.id.in_(wanted)).order_by(*order))
        return [dict(row._mapping) for row in rows], len(found) > len(wanted)


def _filtered(
    query: sa.Select,
    since: datetime | None,
    until: datetime | None,
    status: int | None,
    endpoint: str | None,
    before: tuple[datetime, str] | None = None,
) -> sa.Select:
    """``query`` restricted to a time range [since, until), a status, an endpoint and the rows
    after a cursor ``before``."""
    t = prediction_log
    if before is not None:
        at, row_id = before
        # "<=" on the indexed column alone bounds the seek; the OR only settles ties.
        query = query.where(t.c.created_at <= at, sa.or_(t.c.created_at < at, t.c.id < row_id))
    if since is not None:
        query = query.where(t.c.created_at >= since)
    if until is not None:
        query = query.where(t.c.created_at < until)
    if status is not None:
        query = query.where(t.c.status == status)
    if endpoint is not None:
        query = query.where(t.c.endpoint == endpoint)
    return query


@dataclass(frozen=True)
class LoggedPrediction:
    """A successful prediction found in the log."""

    prediction_id: str
    value: float
    created_at: datetime
    model_version: str | None
    token_sha256: str | None = None


def find_prediction(engine: Engine, prediction_id: str) -> LoggedPrediction | None:
    """The prediction behind an id from /predict (``<id>``) or /predict/batch (``<id>-<row>``)."""
    request_id, _, index = prediction_id.partition("-")
    t = prediction_log
    columns = (t.c.prediction, t.c.predictions, t.c.created_at, t.c.model_version)
    columns += (t.c.feedback_token_sha256,)
    endpoint = BATCH if index else PREDICT
    query = sa.select(*columns).where(
        t.c.id == request_id, t.c.endpoint == endpoint, t.c.status == 200
    )
    with reading(engine) as connection:
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
    return LoggedPrediction(
        prediction_id, float(value), row.created_at, row.model_version, row.feedback_token_sha256
    )


def has_accepted_feedback(engine: Engine) -> bool:
    """Whether any feedback was accepted (one seek in ``feedback_key``'s index): until then the
    labelled reads have nothing to find and need not run."""
    key = prediction_log.c.feedback_key
    query = sa.select(key).where(key.is_not(None)).limit(1)
    with reading(engine) as connection:
        return connection.execute(query).first() is not None


def feedback_exists(engine: Engine, prediction_id: str) -> bool:
    """Whether feedback for ``prediction_id`` was already recorded."""
    t = prediction_log
    query = sa.select(t.c.id).where(
        t.c.feedback_for == prediction_id, t.c.endpoint == FEEDBACK, t.c.status == 200
    )
    with reading(engine) as connection:
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
    with reading(engine) as connection:
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
    rows: list[dict[str, Any]] = []
    # The monitor asks every tick: with no feedback ever, skip the query (one index seek).
    if has_accepted_feedback(engine):
        with reading(engine) as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
    columns = ["prediction", "actual", "created_at", "model_version", "prediction_id"]
    frame = pd.DataFrame(rows, columns=columns).drop_duplicates("prediction_id", keep="first")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame = frame.sort_values("created_at", ascending=False, kind="stable")
    return frame.reset_index(drop=True).astype({"prediction": "float64", "actual": "float64"})


def labelled_inputs(engine: Engine, limit: int) -> pd.DataFrame:
    """The inputs of the newest ``limit`` predictions that got feedback, with the true value
    as ``MedHouseVal``, their ``prediction_id`` and ``label_source`` (for retraining; newest
    feedback first).

    A batch prediction's id names its row (``<request id>-<row>``). If one prediction got
    feedback twice (a race), the newest feedback counts.
    """
    t = prediction_log
    labels_query = (
        sa.select(t.c.feedback_for, t.c.actual, t.c.label_source)
        .where(t.c.endpoint == FEEDBACK, t.c.status == 200)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(limit)
    )
    inputs: dict[str, Any] = {}
    with reading(engine) as connection:
        labels = connection.execute(labels_query).all()
        wanted = sorted({label.feedback_for.partition("-")[0] for label in labels})
        for start in range(0, len(wanted), 500):  # bounded IN lists
            query = sa.select(t.c.id, t.c.inputs).where(
                t.c.id.in_(wanted[start : start + 500]),
                t.c.endpoint.in_((PREDICT, BATCH)),
                t.c.status == 200,
            )
            inputs.update({row.id: row.inputs for row in connection.execute(query)})
    return labelled_frame(
        [(label.feedback_for, label.actual, label.label_source) for label in labels], inputs
    )


def labelled_frame(
    labels: Sequence[tuple[str, float, str | None]], inputs: dict[str, Any]
) -> pd.DataFrame:
    """``labelled_inputs``'s frame from (prediction id, actual, label source) triples, newest
    first, and the logged inputs of their requests by request id (also used for archived rows;
    a label archived before sources were recorded has none, so it never trains)."""
    from housing.features import TARGET

    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for prediction_id, actual, source in labels:
        if prediction_id in seen:
            continue
        seen.add(prediction_id)
        request_id, _, index = prediction_id.partition("-")
        house = inputs.get(request_id)
        if index:
            house = (
                house[int(index)] if isinstance(house, list) and int(index) < len(house) else None
            )
        if isinstance(house, dict):
            features = {name: house.get(name) for name in FEATURE_NAMES}
            rows.append(
                features
                | {TARGET.name: actual, "prediction_id": prediction_id, "label_source": source}
            )
    columns = [*FEATURE_NAMES, TARGET.name, "prediction_id", "label_source"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({name: "float64" for name in (*FEATURE_NAMES, TARGET.name)})
