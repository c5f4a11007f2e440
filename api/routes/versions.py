"""Approving a registered version: an admin promotes it to `champion` and this API reloads it.

Retrains started by an alert stop at ``pending_approval`` (``housing.retrain``): a drift alert
can be tripped by anyone who sends traffic, so the model it produces is served only after a
person has looked at the gate's verdict, which this answer repeats.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, Field

from api.deps import AdminDep, RuntimeDep
from housing import registry
from housing.service.runtime import Runtime
from housing.service.schemas import ErrorBody, ReloadResult

GATE = registry.GATE_TAG

router = APIRouter(prefix="/admin/versions", tags=["admin"])


class PromotionResult(BaseModel):
    """What POST /admin/versions/{version}/promote did, and the gate's verdict on the version."""

    version: str
    replaced: str | None = Field(description="The champion before (now `previous`); None if same")
    gate: str | None = Field(description="The gate's outcome when registered, now `approved`")
    gate_reason: str | None
    parent_run_id: str | None
    job_id: str | None = Field(description="The retraining job that registered it, if any")
    reload: ReloadResult


class PendingVersion(BaseModel):
    """A registered version that passed the gate and waits for an admin's approval."""

    version: str
    candidate: str | None
    gate_reason: str | None
    parent_run_id: str | None
    val_rmse: float | None
    test_rmse: float | None


def _float(tags: dict[str, str], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def _pending(runtime: Runtime) -> list[PendingVersion]:
    name = runtime.settings.model_name
    try:
        versions = runtime.holder.client().search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    waiting = [v for v in versions if v.tags.get(GATE) == registry.GATE_PENDING]
    return [
        PendingVersion(
            version=str(v.version),
            candidate=v.tags.get("candidate"),
            gate_reason=v.tags.get(registry.GATE_REASON_TAG),
            parent_run_id=v.tags.get("parent_run_id"),
            val_rmse=_float(v.tags, "val_rmse"),
            test_rmse=_float(v.tags, "test_rmse"),
        )
        for v in sorted(waiting, key=lambda v: int(v.version), reverse=True)
    ]


@router.get(
    "/pending",
    response_model=list[PendingVersion],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def pending(_: AdminDep, runtime: RuntimeDep) -> list[PendingVersion]:
    """Versions waiting for approval (alert-started retrains that passed the gate), newest first."""
    try:
        return await asyncio.to_thread(_pending, runtime)
    except MlflowException as exc:
        raise HTTPException(503, f"MLflow registry unavailable: {exc.message}"[:300]) from None


def _promote(runtime: Runtime, version: int) -> tuple[ModelVersion, str | None, str | None]:
    """Promote; the version as it is now, the one it replaced, its gate outcome before."""
    client = runtime.holder.client()
    name = runtime.settings.model_name
    target, replaced = registry.promote(client, name, version)
    return client.get_model_version(name, target.version), replaced, target.tags.get(GATE)


def _job_id(runtime: Runtime, run_id: str | None) -> str | None:
    """The retraining job recorded on the version's training run (None for `housing train`)."""
    if not run_id:
        return None
    try:
        return runtime.holder.client().get_run(run_id).data.tags.get("housing.job_id")
    except MlflowException:
        return None


@router.post(
    "/{version}/promote",
    response_model=PromotionResult,
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody, "description": "HOUSING_API_KEY is not set"},
        404: {"model": ErrorBody, "description": "No such registered version"},
        409: {"model": PromotionResult, "description": "Promoted, but the reload failed"},
        503: {"model": ErrorBody, "description": "The MLflow registry is unavailable"},
    },
)
async def promote(
    _: AdminDep, runtime: RuntimeDep, version: Annotated[int, Path(ge=1, le=10**9)]
) -> PromotionResult | JSONResponse:
    """Make a registered version the champion (approving a pending one) and serve it now."""
    try:
        target, replaced, gate = await asyncio.to_thread(_promote, runtime, version)
    except registry.RegistryError as exc:
        raise HTTPException(404, str(exc)) from None
    except MlflowException as exc:
        raise HTTPException(503, f"MLflow registry unavailable: {exc.message}"[:300]) from None
    outcome = await asyncio.to_thread(runtime.holder.reload, True)
    run_id = target.tags.get("parent_run_id")
    body = PromotionResult(
        version=str(target.version),
        replaced=replaced,
        gate=target.tags.get(GATE, gate),
        gate_reason=target.tags.get(registry.GATE_REASON_TAG),
        parent_run_id=run_id,
        job_id=await asyncio.to_thread(_job_id, runtime, run_id),
        reload=ReloadResult(result=outcome.result, version=outcome.version, detail=outcome.detail),
    )
    if outcome.result == "failed":
        return JSONResponse(body.model_dump(), status_code=409)
    return body
