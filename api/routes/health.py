"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import RuntimeDep
from housing.service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up (it may still be loading its model)."""
    return Health()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(runtime: RuntimeDep, response: Response) -> Readiness:
    """A model is loaded and the prediction log accepts writes (else 503)."""
    model = runtime.holder.current
    try:
        await runtime.batcher.probe()
        database = "ok"
    except Exception as exc:
        database = f"not writable: {exc}"[:300]
    ok = model is not None and database == "ok"
    if not ok:
        response.status_code = 503
    return Readiness(
        ready=ok,
        model_version=model.version if model else None,
        model_error=runtime.holder.last_error,
        database=database,
    )
