"""The monitoring inside the API: one ``Monitor`` per app, its background loop, its dependency.

Created on first use after the runtime started (it needs the log's engine); its gauges go on
the service's registry, so GET /metrics serves them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from housing.monitoring.estimate import Estimator, Serving, build_estimate_metrics
from housing.monitoring.job import Monitor
from housing.monitoring.metrics import build_monitoring_metrics
from housing.monitoring.settings import MonitoringSettings, get_monitoring_settings
from housing.service.runtime import Runtime


def _test_rmse(runtime: Runtime) -> float | None:
    current = runtime.holder.current
    return current.metrics.get("test_rmse") if current is not None else None


def _serving(runtime: Runtime) -> Serving | None:
    current = runtime.holder.current
    if current is None:
        return None
    return Serving(current.version, current.intervals, current.metrics.get("test_mae"))


def _estimator(app: FastAPI, runtime: Runtime, settings: MonitoringSettings) -> Estimator:
    metrics = getattr(app.state, "estimate_metrics", None)
    if metrics is None:  # once per app, like the other gauges
        metrics = app.state.estimate_metrics = build_estimate_metrics(app.state.metrics.registry)
    return Estimator(
        runtime.engine,
        metrics,
        lambda: _serving(runtime),
        window_rows=settings.drift_window_rows,
        coverage_window=settings.performance_window,
    )


def monitor_of(app: FastAPI) -> Monitor:
    """The app's monitor (``app.state.monitoring_settings`` overrides the environment)."""
    monitor: Monitor | None = getattr(app.state, "monitor", None)
    if monitor is None:
        runtime: Runtime = app.state.runtime
        settings: MonitoringSettings = (
            getattr(app.state, "monitoring_settings", None) or get_monitoring_settings()
        )
        metrics = getattr(app.state, "monitoring_metrics", None)
        if metrics is None:  # gauges live as long as the registry: create them once per app
            metrics = app.state.monitoring_metrics = build_monitoring_metrics(
                app.state.metrics.registry
            )
        monitor = Monitor(
            runtime.engine,
            settings,
            metrics,
            lambda: _test_rmse(runtime),
            _estimator(app, runtime, settings),
        )
        app.state.monitor = monitor
    return monitor


async def run_monitor(app: FastAPI) -> None:
    """Background task: drift and live accuracy every ``HOUSING_DRIFT_INTERVAL_SECONDS``."""
    monitor = monitor_of(app)
    try:
        await monitor.run()
    finally:
        monitor.close()
        app.state.monitor = None


async def get_monitor(request: Request) -> Monitor:
    """The running app's monitor."""
    return monitor_of(request.app)


MonitorDep = Annotated[Monitor, Depends(get_monitor)]
