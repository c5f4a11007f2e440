"""The prediction log, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import ReaderDep, RuntimeDep, SettingsDep
from api.errors import READ_ERRORS
from housing.service import log as prediction_log
from housing.service.schemas import LogPage, LogRecord

router = APIRouter(tags=["log"])

OFFSET_LIMIT = 10_000
"""Deepest ``offset`` (each skipped row is read): go further with ``cursor``."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = r"^(\d{1,17})_([0-9A-Za-z]{1,48})$"
"""``<created_at in microseconds since 1970>_<id>`` of the last row of the previous page."""


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def encode_cursor(row: dict) -> str:
    """The cursor that continues after ``row``."""
    micros = (row["created_at"] - EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{row['id']}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) from a ``next_cursor`` (its pattern is checked by the query model)."""
    match = re.fullmatch(CURSOR, cursor)
    if match is None:  # pragma: no cover - the query parameter's pattern refused it already
        raise ValueError(cursor)
    return EPOCH + timedelta(microseconds=int(match[1])), match[2]


@router.get(
    "/predictions",
    response_model=LogPage,
    responses={
        **READ_ERRORS,
        503: {"description": "The read took longer than HOUSING_LOG_READ_TIMEOUT_SECONDS"},
    },
)
def predictions(
    _: ReaderDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[
        int, Query(ge=0, le=OFFSET_LIMIT, description="Rows to skip (use cursor beyond this)")
    ] = 0,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR, description="next_cursor of the previous page")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    endpoint: Literal["/predict", "/predict/batch", "/feedback", "/explain"] | None = None,
) -> LogPage:
    """Logged requests newest first, by time range, status and endpoint (paginated; a page
    stops early at HOUSING_PREDICTIONS_MAX_BYTES, and ``next_cursor`` says where to go on).

    Reads past HOUSING_LOG_READ_TIMEOUT_SECONDS are stopped and answered 503."""
    rows, more = prediction_log.bounded_page(
        runtime.engine,
        limit=limit,
        max_bytes=settings.predictions_max_bytes,
        offset=offset,
        since=_utc(since),
        until=_utc(until),
        status=status,
        endpoint=endpoint,
        before=decode_cursor(cursor) if cursor is not None else None,
    )
    return LogPage(
        items=[LogRecord(**row) for row in rows],
        limit=limit,
        offset=offset,
        next_offset=(offset + len(rows) if more and offset + len(rows) <= OFFSET_LIMIT else None),
        next_cursor=encode_cursor(rows[-1]) if more else None,
    )
