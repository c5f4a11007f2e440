"""The prediction log, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import RuntimeDep
from housing.service import log as prediction_log
from housing.service.schemas import LogPage, LogRecord

router = APIRouter(tags=["log"])


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@router.get("/predictions", response_model=LogPage)
def predictions(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    since: Annotated[datetime | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    endpoint: Literal["/predict", "/predict/batch", "/feedback", "/explain"] | None = None,
) -> LogPage:
    """Logged requests newest first, by time range, status and endpoint (paginated)."""
    rows = prediction_log.page(
        runtime.engine,
        limit=limit + 1,
        offset=offset,
        since=_utc(since),
        until=_utc(until),
        status=status,
        endpoint=endpoint,
    )
    more = len(rows) > limit
    return LogPage(
        items=[LogRecord(**row) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )
