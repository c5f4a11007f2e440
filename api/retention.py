"""The log's retention inside the API: a background purge every HOUSING_LOG_PURGE_INTERVAL_SECONDS
(one process at a time across the processes sharing the log), and the log's size gauges."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from housing.service import retention

logger = logging.getLogger(__name__)

FIRST_PURGE_DELAY_SECONDS = 60.0
"""The first purge waits this long after start (at most an interval): starting stays quick."""


def _metrics(app: FastAPI) -> retention.RetentionMetrics:
    metrics = getattr(app.state, "retention_metrics", None)
    if metrics is None:  # gauges live as long as the registry: create them once per app
        metrics = app.state.retention_metrics = retention.build_retention_metrics(
            app.state.metrics.registry
        )
    return metrics


def _round(app: FastAPI, settings: retention.RetentionSettings, holder: str) -> None:
    engine = app.state.runtime.engine
    retention.enforce_once(engine, settings, holder)
    _metrics(app).show(retention.stats(engine))


async def enforce_retention(app: FastAPI) -> None:
    """Background task: archive and purge the log past HOUSING_LOG_RETENTION_DAYS."""
    settings = retention.RetentionSettings()
    holder = retention.new_holder()
    _metrics(app)
    await asyncio.sleep(min(FIRST_PURGE_DELAY_SECONDS, settings.purge_interval_seconds))
    while True:
        try:
            await asyncio.to_thread(_round, app, settings, holder)
        except Exception:  # the loop must survive anything; the error is in the log
            logger.exception("log retention failed")
        await asyncio.sleep(settings.purge_interval_seconds)
