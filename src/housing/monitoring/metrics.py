"""Prometheus gauges of the monitoring, registered on the service's registry.

A gauge is NaN until its first value is known, so "no result yet" never reads as "no drift" or
"zero error"; NaN never crosses an alert threshold and Grafana shows it as a gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

from housing.features import FEATURE_NAMES
from housing.monitoring.performance import LivePerformance

NAN = math.nan


@dataclass(frozen=True)
class MonitoringMetrics:
    """The monitoring's instruments (names are part of the contract with the dashboards)."""

    drift_share: Gauge
    drift_detected: Gauge
    feature_drift_score: Gauge
    feature_drifted: Gauge
    drift_current_rows: Gauge
    drift_last_run: Gauge
    live_rmse: Gauge
    live_mae: Gauge
    live_labelled: Gauge
    model_test_rmse: Gauge

    def show_drift(
        self, share: float, detected: bool, rows: int, at: float, features: list
    ) -> None:
        """Publish one drift result (``features``: dicts with feature, score, drifted)."""
        self.drift_share.set(share)
        self.drift_detected.set(1.0 if detected else 0.0)
        self.drift_current_rows.set(rows)
        self.drift_last_run.set(at)
        for feature in features:
            self.feature_drift_score.labels(feature=feature["feature"]).set(feature["score"])
            self.feature_drifted.labels(feature=feature["feature"]).set(float(feature["drifted"]))

    def show_performance(self, live: LivePerformance, test_rmse: float | None) -> None:
        """Publish the rolling errors and the serving model's offline test RMSE."""
        self.live_rmse.set(NAN if live.rmse is None else live.rmse)
        self.live_mae.set(NAN if live.mae is None else live.mae)
        self.live_labelled.set(live.count)
        self.model_test_rmse.set(NAN if test_rmse is None else test_rmse)


def build_monitoring_metrics(registry: CollectorRegistry) -> MonitoringMetrics:
    """Create the gauges on ``registry`` (the service's, so /metrics serves them)."""

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        # With several workers each runs the monitor: report the newest value, not one series
        # per worker process (ignored with one worker).
        return Gauge(name, doc, list(labels), registry=registry, multiprocess_mode="mostrecent")

    metrics = MonitoringMetrics(
        drift_share=gauge("housing_drift_share", "Share of features drifted in the latest check"),
        drift_detected=gauge("housing_drift_detected", "1 if the latest check found dataset drift"),
        feature_drift_score=gauge(
            "housing_feature_drift_score",
            "Evidently drift score per feature (K-S p-value: lower = more drifted)",
            ("feature",),
        ),
        feature_drifted=gauge(
            "housing_feature_drifted", "1 if the feature drifted in the latest check", ("feature",)
        ),
        drift_current_rows=gauge(
            "housing_drift_current_rows", "Logged inputs compared in the latest drift check"
        ),
        drift_last_run=gauge(
            "housing_drift_last_run_timestamp_seconds", "Unix time of the latest drift result"
        ),
        live_rmse=gauge("housing_live_rmse", "RMSE over the latest labelled predictions ($100k)"),
        live_mae=gauge("housing_live_mae", "MAE over the latest labelled predictions ($100k)"),
        live_labelled=gauge(
            "housing_live_labelled_predictions", "Labelled predictions in the live-accuracy window"
        ),
        model_test_rmse=gauge(
            "housing_model_test_rmse", "Test-split RMSE of the serving model (from the registry)"
        ),
    )
    for unknown in (
        metrics.drift_share,
        metrics.drift_detected,
        metrics.drift_current_rows,
        metrics.drift_last_run,
        metrics.live_rmse,
        metrics.live_mae,
        metrics.model_test_rmse,
    ):
        unknown.set(NAN)
    for name in FEATURE_NAMES:
        metrics.feature_drift_score.labels(feature=name).set(NAN)
        metrics.feature_drifted.labels(feature=name).set(NAN)
    return metrics
