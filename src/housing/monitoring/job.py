"""The API's monitoring loop: drift on an interval, live accuracy, gauges — off the request path.

The loop runs as one asyncio task in the API process; each tick does its blocking work in a
worker thread, and Evidently itself runs in a separate process (one, spawned once), so its
second of pandas/scipy work never holds the GIL the request handlers need. Drift is computed
only once ``drift_min_rows`` inputs are logged, and only when the window of recent inputs
changed since the previous check. Each result goes to the gauges, then into the log DB; a
restarted API first shows the newest stored verdict.

API processes sharing one log (`housing serve --workers N`, replicas on one PostgreSQL) share
the work too: before computing, a process claims the interval in the log's ``drift_lease`` row;
the others show the newest stored result on their gauges instead of running Evidently again.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.engine import Engine

from housing.monitoring import store
from housing.monitoring.drift import DriftResult, detect_drift
from housing.monitoring.estimate import Estimator, LiveEstimate
from housing.monitoring.metrics import MonitoringMetrics
from housing.monitoring.performance import LivePerformance, live_performance
from housing.monitoring.settings import MonitoringSettings

log = logging.getLogger(__name__)

WAITING, OK, UNAVAILABLE, FAILED = "waiting", "ok", "unavailable", "error"
DRIFT_TIMEOUT_SECONDS = 300.0
PARENT_CHECK_SECONDS = 1.0
LEASE_SHARE = 0.9
"""A claim holds for this share of the interval: the claimer's own next tick (an interval
later, plus the check's duration) always finds it expired."""


def exit_with_parent(parent: int) -> None:
    """In the Evidently process: exit once the server that started it is gone (killed, even by
    SIGKILL, it cannot stop its helper; the helper is then adopted and its parent id changes).
    A thread polls ``os.getppid``: Linux's PR_SET_PDEATHSIG would follow the creating thread,
    which here is a worker thread of the server, not the server process."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    if os.name == "posix":  # Windows keeps the original parent id: nothing to poll there
        threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@dataclass(frozen=True)
class DriftStatus:
    """What the latest drift check did (``status``) and why (``detail``)."""

    status: str
    detail: str
    checked_at: datetime | None
    logged_inputs: int


class Monitor:
    """Drift and live-accuracy state of one API process."""

    def __init__(
        self,
        engine: Engine,
        settings: MonitoringSettings,
        metrics: MonitoringMetrics,
        test_rmse: Callable[[], float | None] = lambda: None,
        estimator: Estimator | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.test_rmse = test_rmse
        self.estimator = estimator
        """Label-free MAE and live interval coverage (``housing.monitoring.estimate``)."""
        self.status = DriftStatus(WAITING, "no drift check has run yet", None, 0)
        self._reference: pd.DataFrame | None = None
        self._fingerprint: int | None = None
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self.holder = f"{socket.gethostname()} pid {os.getpid()}"
        """How this process signs its claims on the drift lease."""

    def close(self) -> None:
        """Stop the Evidently process (if one was started), even in the middle of a check."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # `shutdown(wait=False)` leaves a busy worker running, and orphaned once the server
        # exits (it then blocks for ever writing its multi-MB report to a pipe nobody reads);
        # ProcessPoolExecutor can stop workers only from Python 3.14 (`terminate_workers`).
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()

    def _detect(self, reference: pd.DataFrame, current: pd.DataFrame) -> DriftResult:
        """Run Evidently in the helper process (started on first use, restarted if it died)."""
        if self._executor is None:
            context = multiprocessing.get_context("spawn")  # never fork a threaded server
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        config = self.settings.drift_config()
        future = self._executor.submit(detect_drift, reference, current, config, with_html=True)
        try:
            return future.result(timeout=DRIFT_TIMEOUT_SECONDS)
        except (BrokenProcessPool, TimeoutError):
            self.close()  # the next check starts a fresh process
            raise

    def reference(self) -> pd.DataFrame:
        """The training reference sample (read once; `housing data` writes it)."""
        if self._reference is None:
            from housing.data import load_reference

            self._reference = load_reference(self.settings.data_dir)
        return self._reference

    def check_drift(self) -> DriftStatus:
        """Compute and store drift if enough inputs are logged and they changed (blocking)."""
        with self._lock:  # the loop and an on-demand call never compute twice at once
            self.status = self._check_drift()
            return self.status

    def _check_drift(self) -> DriftStatus:
        from housing.data import DataNotFoundError
        from housing.service.log import recent_inputs
        from housing.validation import DataValidationError

        now = datetime.now(UTC)
        current = recent_inputs(self.engine, self.settings.drift_window_rows)
        rows = len(current)
        if rows < self.settings.drift_min_rows:
            detail = f"{rows} inputs logged; drift needs {self.settings.drift_min_rows}"
            return DriftStatus(WAITING, detail, now, rows)
        fingerprint = int(pd.util.hash_pandas_object(current, index=False).sum())
        if fingerprint == self._fingerprint:
            return DriftStatus(OK, "no new inputs since the last check", now, rows)
        try:
            reference = self.reference()
        except (DataNotFoundError, DataValidationError) as exc:
            return DriftStatus(UNAVAILABLE, f"no drift reference: {exc}", now, rows)
        lease = self.settings.drift_interval_seconds * LEASE_SHARE
        if not store.claim_drift_check(self.engine, self.holder, now, lease):
            self.publish_latest()
            holder, claimed = store.lease_holder(self.engine)
            detail = f"checked by {holder} at {claimed.isoformat(timespec='seconds')}"
            return DriftStatus(OK, detail, now, rows)
        result = self._detect(reference, current)
        # Gauges first: whoever sees the stored run also sees it on /metrics.
        summary = result.as_dict()
        self.metrics.show_drift(
            result.share, result.detected, rows, now.timestamp(), summary["features"]
        )
        run_id = store.save_run(self.engine, result, now, self.settings.drift_reports_kept)
        self._fingerprint = fingerprint
        verdict = "drift detected" if result.detected else "no drift"
        log.info("drift run %d: %s (share %.3f, %d rows)", run_id, verdict, result.share, rows)
        return DriftStatus(OK, f"{verdict} in the latest {rows} inputs", now, rows)

    def publish_latest(self) -> store.StoredRun | None:
        """Show the newest stored drift result on the gauges."""
        latest = store.latest_run(self.engine)
        if latest is not None:
            summary = latest.summary
            self.metrics.show_drift(
                summary["share"],
                summary["detected"],
                summary["current_rows"],
                latest.computed_at.timestamp(),
                summary["features"],
            )
        return latest

    def performance(self) -> LivePerformance:
        """Rolling RMSE/MAE over the newest labelled predictions; updates the gauges."""
        from housing.service.log import labelled_predictions

        window = self.settings.performance_window
        live = live_performance(labelled_predictions(self.engine, window), window)
        self.metrics.show_performance(live, self.test_rmse())
        return live

    def estimate(self) -> LiveEstimate | None:
        """The label-free MAE estimate and live coverage (None without an estimator)."""
        return self.estimator.estimate() if self.estimator is not None else None

    def tick(self) -> None:
        """One round of the loop; a failure is logged and the loop goes on."""
        try:
            self.performance()
        except Exception:  # the loop must survive anything; the error is in the log
            log.exception("live accuracy failed")
        try:
            self.estimate()
        except Exception:  # as above
            log.exception("accuracy estimate failed")
        try:
            self.check_drift()
        except Exception as exc:  # as above
            log.exception("drift check failed")
            self.status = DriftStatus(FAILED, f"drift check failed: {exc}"[:500], None, 0)

    async def run(self) -> None:
        """Show the stored verdict, then tick every ``drift_interval_seconds`` until cancelled."""
        try:
            await asyncio.to_thread(self.publish_latest)
        except Exception:  # a restart must come up even if the log is unreadable right now
            log.exception("cannot read the latest drift result")
        while True:
            await asyncio.to_thread(self.tick)
            await asyncio.sleep(self.settings.drift_interval_seconds)
