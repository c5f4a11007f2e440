"""Data drift of the served inputs: latest result, history, Evidently's HTML report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep
from api.monitoring import MonitorDep
from api.errors import READ_ERRORS
from housing.monitoring import store
from housing.monitoring.schemas import DriftBody, DriftHistoryItem
from housing.service.schemas import ErrorBody

router = APIRouter(prefix="/drift", tags=["monitoring"])


@router.get("", response_model=DriftBody)
async def drift(monitor: MonitorDep) -> DriftBody:
    """The latest drift result (training reference vs. the newest logged inputs)."""
    latest = await run_in_threadpool(store.latest_run, monitor.engine)
    status, settings = monitor.status, monitor.settings
    fields = {
        "status": status.status,
        "detail": status.detail,
        "checked_at": status.checked_at,
        "logged_inputs": status.logged_inputs,
        "min_rows": settings.drift_min_rows,
        "window_rows": settings.drift_window_rows,
        "interval_seconds": settings.drift_interval_seconds,
    }
    if latest is not None:
        fields.update(run_id=latest.id, computed_at=latest.computed_at, **latest.summary)
    return DriftBody.model_validate(fields)


@router.get("/history", response_model=list[DriftHistoryItem], responses=READ_ERRORS)
async def history(
    _: ReaderDep, monitor: MonitorDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DriftHistoryItem]:
    """Past drift results, newest first."""
    runs = await run_in_threadpool(store.run_history, monitor.engine, limit)
    return [
        DriftHistoryItem(
            run_id=run.id,
            computed_at=run.computed_at,
            **{k: run.summary[k] for k in DriftHistoryItem.model_fields if k in run.summary},
        )
        for run in runs
    ]


@router.get(
    "/report",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "Evidently's data drift report"},
        404: {"model": ErrorBody, "description": "No drift result yet"},
        **READ_ERRORS,
    },
)
async def report(_: ReaderDep, monitor: MonitorDep) -> HTMLResponse:
    """Evidently's HTML report of the latest drift result (open it in a browser)."""
    found = await run_in_threadpool(store.latest_report, monitor.engine)
    if found is None:
        raise HTTPException(404, f"no drift report yet: {monitor.status.detail}")
    run_id, html = found
    return HTMLResponse(html, headers={"X-Drift-Run-ID": str(run_id)})
