"""Start and stop the service with the app: log, model, batcher, background tasks.

Background tasks are coroutine functions taking the app; other parts of the system (model
polling, drift monitoring from ``api.monitoring``) are listed in ``BACKGROUND_TASKS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI

from api.monitoring import run_monitor
from api.retention import enforce_retention
from api.routes.explain import close_explain_pool
from housing.service.runtime import Runtime

BackgroundTask = Callable[[FastAPI], Awaitable[None]]


async def poll_model(app: FastAPI) -> None:
    """Reload the model when the registry alias moves."""
    await app.state.runtime.poll_model()


async def checkpoint_log(app: FastAPI) -> None:
    """Fold the SQLite log's WAL into the database off the request path."""
    await app.state.runtime.checkpoint_log()


BACKGROUND_TASKS: list[BackgroundTask] = [
    poll_model,
    checkpoint_log,
    run_monitor,
    enforce_retention,
    close_explain_pool,
]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the runtime and the background tasks; on shutdown, stop them in reverse."""
    app.state.runtime = await Runtime.start(app.state.settings, app.state.metrics)
    tasks = [asyncio.create_task(task(app), name=task.__name__) for task in BACKGROUND_TASKS]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.state.runtime.stop()
