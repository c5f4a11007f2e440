"""Live accuracy from feedback: rolling RMSE/MAE over the newest labelled predictions."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import RuntimeDep
from api.monitoring import MonitorDep
from housing.monitoring.schemas import PerformanceBody

router = APIRouter(tags=["monitoring"])


@router.get("/performance", response_model=PerformanceBody)
async def performance(monitor: MonitorDep, runtime: RuntimeDep) -> PerformanceBody:
    """RMSE and MAE ($100k) over the newest labelled predictions, and the model's test RMSE;
    the label-free MAE estimate over the newest inputs and the intervals' live coverage."""
    live = await run_in_threadpool(monitor.performance)
    estimate = await run_in_threadpool(monitor.estimate)
    current = runtime.holder.current
    test_rmse = current.metrics.get("test_rmse") if current is not None else None
    ratio = live.rmse / test_rmse if live.rmse is not None and test_rmse else None
    return PerformanceBody(
        **live.as_dict(),
        model_version=current.version if current is not None else None,
        test_rmse=test_rmse,
        rmse_ratio=ratio,
        **(estimate.as_dict() if estimate is not None else {}),
    )
