"""Accuracy before labels arrive, and whether the served intervals hold once they do.

σ(x), the champion's difficulty model (``housing.intervals``), is fitted on out-of-fold absolute
residuals, so it estimates the expected absolute error at x; its mean over the newest window of
served inputs (the drift window) estimates the live MAE without a single label (NannyML's
"direct loss estimation" idea). It sees what changes in the *inputs* (more hard houses, more
expensive areas); it cannot see the mapping itself change (concept drift: the same house now
worth more), which is why realized MAE from feedback still matters. Live coverage is the share
of labelled predictions whose actual value fell inside the interval logged with them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.engine import Engine

from housing.intervals import Intervals, raw_matrix

log = logging.getLogger(__name__)
NAN = math.nan


@dataclass(frozen=True)
class Serving:
    """What the estimate needs of the serving version."""

    version: str
    intervals: Intervals | None
    test_mae: float | None


@dataclass(frozen=True)
class LiveEstimate:
    """Label-free MAE over ``estimate_rows`` served inputs and coverage over ``coverage_count``
    labelled ones (None when there is nothing to measure)."""

    estimated_mae: float | None
    estimate_rows: int
    estimate_window: int
    interval_level: float | None
    interval_coverage: float | None
    coverage_count: int
    coverage_window: int
    test_mae: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimated_mae(inputs: pd.DataFrame, intervals: Intervals) -> float | None:
    """Mean σ(x) over ``inputs`` (raw features): the expected MAE on them."""
    if inputs.empty:
        return None
    return float(np.mean(intervals.sigma(raw_matrix(inputs))))


def labelled_intervals(engine: Engine, limit: int) -> pd.DataFrame:
    """The newest ``limit`` labelled predictions that were served with an interval:
    ``actual``, ``low``, ``high`` (one accepted feedback per prediction; newest first)."""
    from housing.service.log import BATCH, FEEDBACK, PREDICT, prediction_log

    t = prediction_log
    labels_query = (
        sa.select(t.c.feedback_for, t.c.actual)
        .where(t.c.endpoint == FEEDBACK, t.c.status == 200)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(limit)
    )
    served: dict[str, Any] = {}
    with engine.connect() as connection:
        labels = connection.execute(labels_query).all()
        wanted = sorted({label.feedback_for.partition("-")[0] for label in labels})
        for start in range(0, len(wanted), 500):  # bounded IN lists
            query = sa.select(t.c.id, t.c.interval_low, t.c.interval_high, t.c.intervals).where(
                t.c.id.in_(wanted[start : start + 500]),
                t.c.endpoint.in_((PREDICT, BATCH)),
                t.c.status == 200,
            )
            served.update({row.id: row for row in connection.execute(query)})
    rows, seen = [], set()
    for label in labels:
        if label.feedback_for in seen:
            continue
        seen.add(label.feedback_for)
        bounds = _bounds_of(served.get(label.feedback_for.partition("-")[0]), label.feedback_for)
        if bounds is not None:
            rows.append((label.feedback_for, float(label.actual), *bounds))
    return pd.DataFrame(rows, columns=["prediction_id", "actual", "low", "high"])


def _bounds_of(row: Any, prediction_id: str) -> tuple[float, float] | None:
    """The logged (low, high) of a prediction id (``<id>`` or ``<id>-<row>``)."""
    if row is None:
        return None
    _, _, index = prediction_id.partition("-")
    if not index:
        if row.interval_low is None or row.interval_high is None:
            return None
        return float(row.interval_low), float(row.interval_high)
    bounds = row.intervals if isinstance(row.intervals, list) else []
    position = int(index)
    pair = bounds[position] if position < len(bounds) else None
    return (float(pair[0]), float(pair[1])) if isinstance(pair, list) and len(pair) == 2 else None


def live_coverage(labelled: pd.DataFrame) -> float | None:
    """Share of ``labelled`` (actual, low, high) whose actual lies inside its interval."""
    if labelled.empty:
        return None
    inside = (labelled["actual"] >= labelled["low"]) & (labelled["actual"] <= labelled["high"])
    return float(inside.mean())


@dataclass(frozen=True)
class EstimateMetrics:
    """The gauges of the estimate and of live coverage (on the service's registry)."""

    estimated_mae: Gauge
    estimate_rows: Gauge
    coverage: Gauge
    coverage_labelled: Gauge
    level: Gauge
    test_mae: Gauge

    def show(self, live: LiveEstimate) -> None:
        def value(number: float | None) -> float:
            return NAN if number is None else number

        self.estimated_mae.set(value(live.estimated_mae))
        self.estimate_rows.set(live.estimate_rows)
        self.coverage.set(value(live.interval_coverage))
        self.coverage_labelled.set(live.coverage_count)
        self.level.set(value(live.interval_level))
        self.test_mae.set(value(live.test_mae))


def build_estimate_metrics(registry: CollectorRegistry) -> EstimateMetrics:
    """Create the gauges (NaN until known) on ``registry``."""

    def gauge(name: str, doc: str) -> Gauge:
        made = Gauge(name, doc, registry=registry, multiprocess_mode="mostrecent")
        made.set(NAN)
        return made

    return EstimateMetrics(
        estimated_mae=gauge(
            "housing_estimated_mae", "Label-free MAE estimate: mean σ(x) over the drift window"
        ),
        estimate_rows=gauge("housing_estimate_rows", "Served inputs the MAE estimate averages"),
        coverage=gauge(
            "housing_live_interval_coverage",
            "Share of the newest labelled predictions whose actual fell inside their interval",
        ),
        coverage_labelled=gauge(
            "housing_live_interval_labelled", "Labelled predictions with an interval in the window"
        ),
        level=gauge("housing_interval_level", "Nominal coverage of the serving intervals"),
        test_mae=gauge("housing_model_test_mae", "Test-split MAE of the serving model ($100k)"),
    )


class Estimator:
    """Computes the estimate and live coverage from the log for the serving version."""

    def __init__(
        self,
        engine: Engine,
        metrics: EstimateMetrics,
        serving: Callable[[], Serving | None],
        *,
        window_rows: int,
        coverage_window: int,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.serving = serving
        self.window_rows = window_rows
        self.coverage_window = coverage_window

    def estimate(self) -> LiveEstimate:
        """One measurement (blocking: reads the log); updates the gauges."""
        from housing.service.log import recent_inputs

        serving = self.serving()
        intervals = serving.intervals if serving is not None else None
        mae, rows = None, 0
        if intervals is not None:
            inputs = recent_inputs(self.engine, self.window_rows)
            mae, rows = estimated_mae(inputs, intervals), len(inputs)
        labelled = labelled_intervals(self.engine, self.coverage_window)
        live = LiveEstimate(
            estimated_mae=mae,
            estimate_rows=rows,
            estimate_window=self.window_rows,
            interval_level=intervals.level if intervals is not None else None,
            interval_coverage=live_coverage(labelled),
            coverage_count=len(labelled),
            coverage_window=self.coverage_window,
            test_mae=serving.test_mae if serving is not None else None,
        )
        self.metrics.show(live)
        return live
