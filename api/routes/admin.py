"""Operator actions (need ``X-API-Key``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from api.deps import AdminDep, RuntimeDep
from housing.service.schemas import ErrorBody, ReloadResult

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=ReloadResult,
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody, "description": "HOUSING_API_KEY is not set"},
        409: {"model": ReloadResult, "description": "The new version was refused"},
    },
)
async def reload(_: AdminDep, runtime: RuntimeDep, response: Response) -> ReloadResult:
    """Load the version the alias points at now (also retries a refused one)."""
    outcome = await asyncio.to_thread(runtime.holder.reload, True)
    if outcome.result == "failed":
        response.status_code = 409
    return ReloadResult(result=outcome.result, version=outcome.version, detail=outcome.detail)
