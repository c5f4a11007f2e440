"""The service's moving parts wired together: log, model holder, batcher, metrics.

``api.main``'s lifespan starts one ``Runtime`` and stops it; tests and the benchmark can too.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from housing.service import log as prediction_log
from housing.service.batcher import Batcher
from housing.service.metrics import ServiceMetrics, build_metrics
from housing.service.model import Loader, ModelHolder, registry_loader
from housing.service.settings import ServiceSettings

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a running service holds."""

    settings: ServiceSettings
    metrics: ServiceMetrics
    engine: Engine
    holder: ModelHolder
    batcher: Batcher

    @classmethod
    async def start(
        cls,
        settings: ServiceSettings,
        metrics: ServiceMetrics | None = None,
        loader: Loader = registry_loader,
    ) -> Runtime:
        """Migrate the log, load the model if there is one, start the batcher."""
        metrics = metrics or build_metrics()
        engine = prediction_log.create_log_engine(
            settings.database_url,
            settings.database_timeout_seconds,
            background_checkpoints=True,
            read_time_limit=settings.log_read_timeout_seconds,
        )
        await asyncio.to_thread(prediction_log.migrate, engine)
        holder = ModelHolder(settings, metrics, loader)
        outcome = await asyncio.to_thread(holder.reload)
        logger.info("model: %s (%s)", outcome.result, outcome.detail)
        batcher = Batcher(
            engine,
            holder,
            metrics,
            model_threads=settings.model_threads,
            inline=settings.batch_inline,
            linger_seconds=settings.batch_linger_ms / 1000,
        )
        await batcher.start()
        # Everything loaded so far (libraries, the model) lives as long as the process: keep
        # it out of the garbage collector's full passes, which otherwise stall requests for
        # 100+ ms every so often under load.
        gc.freeze()
        return cls(settings, metrics, engine, holder, batcher)

    async def stop(self) -> None:
        """Serve what is queued, then release the database."""
        await self.batcher.stop()
        self.engine.dispose()

    async def checkpoint_log(self, interval: float = 1.0, optimize_every: int = 3600) -> None:
        """Checkpoint the SQLite log every ``interval`` s off the event loop (until cancelled),
        and refresh its planner statistics every ``optimize_every`` checkpoints."""
        ticks = 0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            try:
                await asyncio.to_thread(prediction_log.checkpoint, self.engine)
                if ticks % optimize_every == 0:
                    await asyncio.to_thread(prediction_log.optimize, self.engine)
            except Exception as exc:  # a locked or lost database: the next try may succeed
                logger.warning("log checkpoint failed: %s", exc)

    async def poll_model(self) -> None:
        """Reload when the alias moves, every ``reload_interval_seconds`` (runs until cancelled)."""
        while True:
            await asyncio.sleep(self.settings.reload_interval_seconds)
            try:
                await asyncio.to_thread(self.holder.reload)
            except Exception:  # polling must survive anything; the error is in the log
                logger.exception("model poll failed")
