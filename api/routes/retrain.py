"""Retraining over HTTP: start a job, follow it, and the drift alert's webhook.

Training never runs in the API process: ``housing.jobs`` starts a child process and the routes
answer at once; a job that moves the champion makes this process reload it (other workers see
it at their next poll).
"""

from __future__ import annotations

import secrets
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminDep, SettingsDep, api_key_header
from housing import batches as batch_store
from housing.jobs import (
    JOB_ID,
    AlertOutcome,
    JobBusyError,
    JobRecord,
    JobRunner,
    RetrainSettings,
    get_retrain_settings,
    list_jobs,
    read_job,
)
from housing.service.schemas import ErrorBody
from housing.settings import Settings, get_settings

router = APIRouter(tags=["retraining"])

_RUNNER_GUARD = threading.Lock()

bearer = HTTPBearer(auto_error=False)


# --- bodies ------------------------------------------------------------------------------------


class RetrainRequest(BaseModel):
    """What to train on besides the training split (everything, by default)."""

    model_config = ConfigDict(extra="forbid")

    batches: list[str] | None = Field(
        None, max_length=10_000, description="Batch ids (GET /data/batches); omitted = all"
    )
    feedback: bool = Field(True, description="Add the predictions that got feedback")


class JobBusyBody(BaseModel):
    """409: a retrain is running; its id."""

    detail: str
    job_id: str | None


class AlertmanagerAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (the fields used; the rest is kept)."""

    model_config = ConfigDict(extra="allow")

    status: str
    labels: dict[str, str] = {}
    startsAt: str | None = None  # noqa: N815 - Alertmanager's spelling
    fingerprint: str | None = None


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook payload (version 4)."""

    model_config = ConfigDict(extra="allow")

    status: str
    alerts: list[AlertmanagerAlert] = Field(default_factory=list, max_length=1000)


# --- dependencies ------------------------------------------------------------------------------


def get_runner(
    request: Request, retrain: Annotated[RetrainSettings, Depends(get_retrain_settings)]
) -> JobRunner:
    """This process's job runner (made on first use), wired to the service's settings and model."""
    state = request.app.state
    with _RUNNER_GUARD:
        if getattr(state, "retrain_runner", None) is None:
            service = state.settings
            env = {
                "HOUSING_DATABASE_URL": service.database_url,
                "MLFLOW_TRACKING_URI": service.mlflow_tracking_uri,
                "HOUSING_MODEL_NAME": service.model_name,
                "HOUSING_EXPERIMENT_NAME": service.experiment_name,
            }
            holder = state.runtime.holder
            state.retrain_runner = JobRunner(retrain, env, lambda: holder.reload(True))
    return state.retrain_runner


async def require_alert_auth(
    settings: SettingsDep,
    key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """The API key, as ``X-API-Key`` or as a bearer token (Alertmanager 0.25 can only send
    ``Authorization``: ``http_config.authorization.credentials_file``)."""
    if settings.api_key is None:
        raise HTTPException(403, "admin endpoints are disabled: set HOUSING_API_KEY")
    given = key if key is not None else (credentials.credentials if credentials else None)
    expected = settings.api_key.get_secret_value().encode()
    if given is None or not secrets.compare_digest(given.encode(), expected):
        raise HTTPException(401, "missing or wrong X-API-Key header or bearer token")


RunnerDep = Annotated[JobRunner, Depends(get_runner)]
DataSettingsDep = Annotated[Settings, Depends(get_settings)]
"""The training side's settings (``HOUSING_DATA_DIR``: where batches are stored)."""
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong API key"},
    403: {"model": ErrorBody, "description": "HOUSING_API_KEY is not set"},
}


# --- retraining --------------------------------------------------------------------------------


@router.post(
    "/admin/retrain",
    status_code=202,
    response_model=JobRecord,
    responses={
        **AUTH_ERRORS,
        409: {"model": JobBusyBody, "description": "A retrain is running"},
        422: {"model": ErrorBody, "description": "Unknown batch id"},
    },
)
async def start_retrain(
    _: AdminDep,
    runner: RunnerDep,
    data: DataSettingsDep,
    body: RetrainRequest | None = None,
) -> JobRecord | JSONResponse:
    """Start a retraining job in the background (one at a time); follow it at /admin/jobs/{id}."""
    body = body or RetrainRequest()
    if body.batches is not None:
        try:
            await run_in_threadpool(batch_store.select, data.data_dir, body.batches)
        except batch_store.BatchStoreError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
    try:
        return await run_in_threadpool(runner.start, "api", body.batches, body.feedback)
    except JobBusyError as exc:
        return JSONResponse({"detail": str(exc), "job_id": exc.job_id}, status_code=409)


@router.get("/admin/jobs", response_model=list[JobRecord], responses=AUTH_ERRORS)
async def jobs(
    _: AdminDep,
    retrain: Annotated[RetrainSettings, Depends(get_retrain_settings)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[JobRecord]:
    """Retraining jobs, newest first."""
    return await run_in_threadpool(list_jobs, retrain.jobs_dir, limit)


@router.get(
    "/admin/jobs/{job_id}",
    response_model=JobRecord,
    responses={**AUTH_ERRORS, 404: {"model": ErrorBody, "description": "No such job"}},
)
async def job(
    _: AdminDep,
    retrain: Annotated[RetrainSettings, Depends(get_retrain_settings)],
    job_id: Annotated[str, Path(pattern=JOB_ID.pattern)],
) -> JobRecord:
    """A job's status; at the end its candidates' metrics and whether the champion moved."""
    found = await run_in_threadpool(read_job, retrain.jobs_dir, job_id)
    if found is None:
        raise HTTPException(404, f"no retraining job {job_id}")
    return found


@router.post(
    "/admin/retrain/alert",
    response_model=AlertOutcome,
    responses={
        **AUTH_ERRORS,
        202: {"model": AlertOutcome, "description": "A retrain was started"},
    },
)
async def alert_webhook(
    _: Annotated[None, Depends(require_alert_auth)],
    runner: RunnerDep,
    payload: AlertmanagerWebhook,
    response: Response,
) -> AlertOutcome:
    """Alertmanager's webhook: a firing alert labelled ``action=retrain`` starts a retrain,
    unless one ran for an alert within HOUSING_RETRAIN_COOLDOWN_SECONDS (answered 200 then, so
    Alertmanager does not retry)."""
    outcome = await run_in_threadpool(runner.start_for_alert, payload.model_dump())
    if outcome.started:
        response.status_code = 202
    return outcome
