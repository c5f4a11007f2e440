"""The model being served: loaded from the registry's alias, reloaded when the alias moves.

Loading happens off the request path (the caller runs ``reload`` in a thread) and ends with one
attribute assignment, so a request sees the old model or the new one, never half of either.
A version that fails to load, or loads but cannot predict a typical house, is refused: it is
logged and counted, the old model keeps serving, and polling does not retry it until the alias
moves again (``/admin/reload`` does).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from housing.features import FEATURE_NAMES, FEATURES, typical_row
from housing.intervals import Intervals
from housing.service.compiled import Predict, compile_estimator, compile_pipeline
from housing.service.explain import ExplainAssets, load_assets
from housing.service.metrics import ServiceMetrics
from housing.service.settings import ServiceSettings

log = logging.getLogger(__name__)

Loader = Callable[[str, str, str], Any]
"""(model name, version, tracking URI) -> fitted sklearn Pipeline."""
IntervalLoader = Callable[[str | None, str], Intervals | None]
"""(the version's run id, tracking URI) -> its intervals, None when it has none."""

METRIC_TAGS = ("test_rmse", "test_mae", "test_r2")
CHECK_ROWS = 256
"""Houses on which a compiled predict must match the pipeline before it serves."""


def check_rows(count: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """The typical house and ``count - 1`` random ones within the spec's ranges."""
    rng = np.random.default_rng(seed)
    low = np.array([f.min for f in FEATURES])
    high = np.array([f.max for f in FEATURES])
    rows = rng.uniform(low, high, size=(count - 1, len(FEATURES)))
    return np.vstack([list(typical_row().values()), rows])


def registry_loader(name: str, version: str, tracking_uri: str) -> Any:
    """Load through ``housing.registry`` (skops with the project's trusted types)."""
    from housing.registry import load_model

    return load_model(name, version, tracking_uri=tracking_uri)


def registry_interval_loader(run_id: str | None, tracking_uri: str) -> Intervals | None:
    """The ``intervals/`` artifact of the version's run (``housing.intervals.load``)."""
    from housing import intervals

    return intervals.load(run_id, tracking_uri)


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version in memory, with what GET /model reports about it."""

    name: str
    version: str
    alias: str
    pipeline: Any
    run_id: str | None = None
    candidate: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    trained_at: str | None = None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    compiled: Predict | None = None
    intervals: Intervals | None = None
    """The version's conformal intervals; None for a version trained without them."""

    def bounds(
        self, features: np.ndarray, predictions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(low, high) of each prediction, or None when this version has no intervals."""
        if self.intervals is None:
            return None
        return self.intervals.bounds(predictions, features)

    explain: ExplainAssets | None = None
    """The version's background sample for /explain (loaded, and swapped, with the model)."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predict an (n, 8) array of features in spec order: one DataFrame for the batch."""
        frame = pd.DataFrame(features, columns=list(FEATURE_NAMES), copy=False)
        # Inputs were validated (finite, in range) before they got here, so scikit-learn's
        # per-call checks add nothing; scoped, so the rest of the process keeps its checks.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if self.compiled is not None:
                return self.compiled(frame)
            return np.asarray(self.pipeline.predict(frame), dtype=np.float64).reshape(-1)


@dataclass(frozen=True)
class Reload:
    """What one reload attempt did."""

    result: str  # loaded | unchanged | failed | no_champion
    version: str | None
    detail: str


def _metrics_of(client: Any, version: Any) -> dict[str, float]:
    """Test metrics from the version's tags, completed by its run's metrics."""
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            run_metrics = client.get_run(version.run_id).data.metrics
            metrics.update({k: float(v) for k, v in run_metrics.items() if math.isfinite(v)})
        except Exception as exc:  # the run may be deleted; the version tags still count
            log.warning("no run metrics for %s v%s: %s", version.name, version.version, exc)
    for key in METRIC_TAGS:
        try:
            metrics[key] = float(version.tags[key])
        except (KeyError, ValueError):
            pass
    return metrics


class ModelHolder:
    """Holds the serving model; ``reload`` swaps it when the registry alias moved."""

    def __init__(
        self,
        settings: ServiceSettings,
        metrics: ServiceMetrics,
        loader: Loader = registry_loader,
        interval_loader: IntervalLoader = registry_interval_loader,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.loader = loader
        self.interval_loader = interval_loader
        self.current: LoadedModel | None = None
        self.refused: str | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._client: Any = None

    def client(self) -> Any:
        """The MLflow client (created once: opening a tracking store is slow)."""
        if self._client is None:
            from mlflow import MlflowClient

            uri = self.settings.mlflow_tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def reload(self, force: bool = False) -> Reload:
        """Load the version the alias points at, if it is not the one serving (blocking)."""
        with self._lock:
            return self._reload(force)

    def _reload(self, force: bool) -> Reload:
        name, alias = self.settings.model_name, self.settings.model_alias
        serving = self.current.version if self.current else None
        try:
            target = self._resolve(name, alias)
        except Exception as exc:
            self.last_error = f"registry unavailable: {exc}"[:500]
            log.error("cannot resolve %s@%s: %s", name, alias, exc)
            return Reload("failed", serving, self.last_error)
        if target is None:
            detail = f"{name} has no {alias!r} alias yet (run `housing train`)"
            self.last_error = None if self.current else detail
            return Reload("no_champion", serving, detail)
        version = str(target.version)
        if version == serving:
            return Reload("unchanged", serving, f"{name} v{serving} is serving")
        if version == self.refused and not force:
            return Reload("failed", serving, f"{name} v{version} was refused before")
        try:
            loaded = self._load(target)
        except Exception as exc:
            self.refused = version
            self.last_error = f"{name} v{version} failed to load: {exc}"[:500]
            self.metrics.reloads.labels(result="failure").inc()
            log.error("refusing %s v%s: %s (still serving v%s)", name, version, exc, serving)
            return Reload("failed", serving, self.last_error)
        self._swap(loaded)
        return Reload("loaded", loaded.version, f"{name} v{loaded.version} is serving")

    def _resolve(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _load(self, version: Any) -> LoadedModel:
        pipeline = self.loader(version.name, version.version, self.settings.mlflow_tracking_uri)
        loaded = LoadedModel(
            name=version.name,
            version=str(version.version),
            alias=self.settings.model_alias,
            pipeline=pipeline,
            run_id=version.run_id,
            candidate=version.tags.get("candidate"),
            metrics=_metrics_of(self.client(), version),
            trained_at=version.tags.get("trained_at"),
            intervals=self.interval_loader(version.run_id, self.settings.mlflow_tracking_uri),
        )
        if self.settings.compiled_predict:
            rows = pd.DataFrame(check_rows(), columns=list(FEATURE_NAMES))
            loaded = replace(loaded, compiled=compile_pipeline(pipeline, rows))
            loaded = replace(loaded, intervals=_compiled_intervals(loaded.intervals))
        explain = load_assets(self.client(), loaded.name, loaded.version, loaded.run_id)
        loaded = replace(loaded, explain=explain)
        # A model that loads but cannot predict a typical house must not serve.
        check = loaded.predict(np.array([list(typical_row().values())]))
        if check.shape != (1,) or not np.isfinite(check).all():
            raise ValueError(f"predicting a typical house gave {check!r}")
        return loaded

    def _swap(self, loaded: LoadedModel) -> None:
        old = self.current
        self.current = loaded  # the atomic swap: the batcher reads this once per batch
        self.refused = None
        self.last_error = None
        self.metrics.reloads.labels(result="success").inc()
        if old is not None:
            # Zero before removing: with several workers the value lives on in the worker's
            # multiprocess file (which ``remove`` leaves), and "livemax" would report it still.
            self.metrics.model_info.labels(old.name, old.version, old.candidate or "").set(0)
            self.metrics.model_info.remove(old.name, old.version, old.candidate or "")
        self.metrics.model_info.labels(loaded.name, loaded.version, loaded.candidate or "").set(1)
        was = f"v{old.version}" if old else "nothing"
        how = "treelite" if loaded.compiled else "scikit-learn"
        bands = "with" if loaded.intervals else "WITHOUT"
        log.info(
            "serving %s v%s with %s trees, %s intervals (was %s)",
            *(loaded.name, loaded.version, how, bands, was),
        )


def _compiled_intervals(intervals: Intervals | None) -> Intervals | None:
    """The intervals with σ(x) in treelite when that is exact (as for the champion)."""
    if intervals is None:
        return None
    predict = compile_estimator(intervals.sigma_model, check_rows())
    return intervals if predict is None else replace(intervals, compiled=predict)
