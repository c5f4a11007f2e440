"""The micro-batcher: one predict and one commit for every request waiting at that moment.

Concurrent requests queue a ``Job`` (a log row, and features to predict if any). One task takes
everything queued, runs ONE ``predict`` for all of it on the model of that moment, writes ALL
the rows in ONE transaction, and only then resolves each request's future: a request is
acknowledged only after its row is committed. The per-call costs of a scikit-learn pipeline
(input checks, a DataFrame) and of a commit are paid once per batch instead of per request,
and batches grow by themselves with the load (whatever arrived while the last batch ran).

By default the batch runs on the event loop itself: predict and a SQLite commit are CPU work
under the GIL, so a thread would only add hand-offs (measured: fewer requests per second, longer
tails). ``inline=False`` moves it to one dedicated thread, for a log database across a network.
Whichever thread predicts gets the OpenMP/BLAS limits and scikit-learn's check-free config.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from housing.service import log as prediction_log
from housing.service.metrics import ServiceMetrics
from housing.service.model import LoadedModel, ModelHolder

logger = logging.getLogger(__name__)


class LogUnavailableError(RuntimeError):
    """The log could not be written, so the request is not acknowledged (503)."""


class ModelUnavailableError(RuntimeError):
    """No model is loaded yet (503); the request was logged."""


class PredictionFailedError(RuntimeError):
    """The model raised or returned a non-finite value (500); the request was logged."""


@dataclass(slots=True, eq=False)
class Job:
    """One request waiting for the next batch."""

    row: dict[str, Any]
    started: float
    future: asyncio.Future
    features: np.ndarray | None = None
    """(k, 8) features to predict; None for a request that only needs its row written."""
    positions: list[int] | None = None
    """For a batch request: the row index of each of the k features (others were rejected)."""
    size: int = 0
    """For a batch request: how many rows it had."""


@dataclass(frozen=True, slots=True)
class Served:
    """A job's predictions and the model that made them."""

    values: np.ndarray
    model: LoadedModel | None
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    """(low, high) per value when the model has intervals (``housing.intervals``)."""


def limit_threads(threads: int) -> None:
    """Cap OpenMP/BLAS threads on the calling thread (the model's predict runs there).

    OpenMP limits are per thread, hence this runs on the batcher's own thread.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


class Batcher:
    """Queues requests and serves them in groups (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        holder: ModelHolder,
        metrics: ServiceMetrics,
        *,
        model_threads: int = 1,
        inline: bool = True,
        linger_seconds: float = 0.005,
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.metrics = metrics
        self.model_threads = model_threads
        self.inline = inline
        self.linger_seconds = linger_seconds
        self._last_size = 1
        self._queue: list[Job] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    async def start(self) -> None:
        """Start the batching task (and its thread) on the running loop."""
        self._wakeup = asyncio.Event()
        if self.inline:
            limit_threads(self.model_threads)
        else:
            self._executor = ThreadPoolExecutor(
                1,
                thread_name_prefix="housing-batcher",
                initializer=limit_threads,
                initargs=(self.model_threads,),
            )
        self._task = asyncio.create_task(self._run(), name="housing-batcher")

    async def stop(self) -> None:
        """Serve what is queued, then stop."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def predict(
        self,
        row: dict[str, Any],
        started: float,
        features: np.ndarray,
        positions: list[int] | None = None,
        size: int = 0,
    ) -> asyncio.Future:
        """Queue features for the next batch; the future gives ``Served`` once logged."""
        return self._submit(Job(row, started, self._future(), features, positions, size))

    def record(self, row: dict[str, Any], started: float) -> asyncio.Future:
        """Queue a row to log (a rejected request, feedback); resolves once committed."""
        return self._submit(Job(row, started, self._future()))

    async def probe(self) -> None:
        """Commit a test write in turn with the batches (raises if the log is not writable)."""
        if self.inline or self._executor is None:
            prediction_log.probe(self.engine)
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, prediction_log.probe, self.engine)

    @staticmethod
    def _future() -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    def _submit(self, job: Job) -> asyncio.Future:
        if self._closing or self._wakeup is None:
            job.future.set_exception(LogUnavailableError("the service is shutting down"))
            return job.future
        self._queue.append(job)
        self._wakeup.set()
        return job.future

    async def _run(self) -> None:
        if self._wakeup is None:
            raise RuntimeError("Batcher.start() was not called")
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._linger()
            jobs, self._queue = self._queue, []
            self._last_size = len(jobs)
            self.metrics.batch_size.observe(len(jobs))
            try:
                if self.inline:
                    outcomes = self._process(jobs)
                else:
                    outcomes = await loop.run_in_executor(self._executor, self._process, jobs)
            except BaseException as exc:  # cancelled or a bug: no request may hang
                error = LogUnavailableError(f"batch aborted: {type(exc).__name__}")
                outcomes = [error] * len(jobs)
                if not isinstance(exc, Exception):
                    self._resolve(jobs, outcomes)
                    raise
                logger.exception("batch of %d aborted", len(jobs))
            self._resolve(jobs, outcomes)

    async def _linger(self) -> None:
        """Wait briefly for as many requests as the last batch had (their clients are likely
        sending the next ones), at most ``linger_seconds`` after the oldest queued request.

        One predict costs about the same for 1 row or 16, so a fuller batch is nearly free
        throughput; under light load the last batch was small and nobody waits.
        """
        if self._wakeup is None:
            raise RuntimeError("Batcher.start() was not called")
        deadline = self._queue[0].started + self.linger_seconds
        while len(self._queue) < self._last_size and not self._closing:
            remaining = deadline - perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    @staticmethod
    def _resolve(jobs: list[Job], outcomes: list[Any]) -> None:
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.future.done():  # the client went away; its row is logged all the same
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _process(self, jobs: list[Job]) -> list[Any]:
        """Predict every job's features at once, then commit every row at once."""
        outcomes: list[Any] = [None] * len(jobs)
        predicting = [i for i, job in enumerate(jobs) if job.features is not None]
        if predicting:
            self._predict(jobs, predicting, outcomes)
        now = perf_counter()
        rows = []
        for job in jobs:
            job.row["latency_ms"] = (now - job.started) * 1000.0
            rows.append(job.row)
        start = perf_counter()
        try:
            prediction_log.write_rows(self.engine, rows)
        except Exception as exc:
            logger.error("prediction log write of %d rows failed: %s", len(rows), exc)
            error = LogUnavailableError("the prediction log cannot be written; try again later")
            return [error] * len(jobs)
        self.metrics.log_write.observe(perf_counter() - start)
        return outcomes

    def _predict(self, jobs: list[Job], predicting: list[int], outcomes: list[Any]) -> None:
        model = self.holder.current  # one model for the whole batch, even during a swap
        if model is None:
            for i in predicting:
                jobs[i].row.update(status=503, error="no model loaded yet")
                outcomes[i] = ModelUnavailableError("no model loaded yet; try again shortly")
            return
        blocks = [jobs[i].features for i in predicting]
        features = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        try:
            values = model.predict(features) if len(features) else np.empty(0)
            if values.shape != (len(features),) or not np.isfinite(values).all():
                raise ValueError(f"the model returned {values.shape} values, some not finite")
            bounds = model.bounds(features, values) if len(features) else None
        except Exception as exc:
            logger.exception(
                "model %s v%s failed on %d rows", model.name, model.version, len(features)
            )
            for i in predicting:
                jobs[i].row.update(status=500, error=f"prediction failed: {type(exc).__name__}")
                outcomes[i] = PredictionFailedError("the model failed on this input")
            return
        offset = 0
        for i in predicting:
            job = jobs[i]
            count = len(job.features)
            mine = values[offset : offset + count]
            band = None if bounds is None else tuple(b[offset : offset + count] for b in bounds)
            offset += count
            job.row["model_name"] = model.name
            job.row["model_version"] = model.version
            if job.positions is None:
                job.row["prediction"] = float(mine[0])
            else:
                predictions: list[float | None] = [None] * job.size
                for position, value in zip(job.positions, mine.tolist(), strict=True):
                    predictions[position] = value
                job.row["predictions"] = predictions
            if band is not None and model.intervals is not None:
                job.row.update(interval_columns(model.intervals.level, band, job))
            outcomes[i] = Served(mine, model, band)
        observe = self.metrics.prediction_value.observe
        for value in values.tolist():
            observe(value)
        if bounds is not None:
            self.metrics.observe_widths(bounds)


def interval_columns(level: float, band: Any, job: Job) -> dict[str, Any]:
    """The log columns of a job's intervals: the bounds of one house, or per batch row
    ``[low, high]`` (None for a rejected row) in ``intervals``."""
    low, high = band
    if job.positions is None:
        return {"interval_level": level, "interval_low": float(low[0]),
                "interval_high": float(high[0])}  # fmt: skip
    rows: list[list[float] | None] = [None] * job.size
    for position, a, b in zip(job.positions, low.tolist(), high.tolist(), strict=True):
        rows[position] = [a, b]
    return {"interval_level": level, "intervals": rows}
