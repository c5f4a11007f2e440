"""API processes sharing one log run one drift check per interval between them: the first to
claim the interval runs Evidently, the others show its stored result on their gauges."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from housing.features import FEATURE_NAMES
from housing.monitoring import store
from housing.monitoring.job import OK, Monitor
from housing.monitoring.metrics import build_monitoring_metrics
from housing.monitoring.settings import MonitoringSettings
from housing.service import log as prediction_log

pytestmark = pytest.mark.slow  # real Evidently runs


REGISTRIES: dict[str, CollectorRegistry] = {}


def monitor_on(database: Path, data_dir: Path, holder: str, interval: float) -> Monitor:
    """A monitor as one API process has it: its own engine and registry, the shared log."""
    engine = prediction_log.create_log_engine(f"sqlite:///{database}")
    settings = MonitoringSettings(data_dir=data_dir, drift_interval_seconds=interval)
    registry = REGISTRIES[holder] = CollectorRegistry()
    monitor = Monitor(engine, settings, build_monitoring_metrics(registry))
    monitor.holder = holder
    return monitor


def share_on_gauges(holder: str) -> float | None:
    """What this process's /metrics says the drift share is."""
    return REGISTRIES[holder].get_sample_value("housing_drift_share")


def test_one_process_checks_per_interval_and_the_others_show_its_result(
    prepared_data_dir: Path, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    database = tmp_path / "log.db"
    prediction_log.migrate(prediction_log.create_log_engine(f"sqlite:///{database}"))
    coastal = held_out[held_out["Longitude"] > -121.0].head(700)  # a shift: drift is not 0
    rows = [
        prediction_log.new_row("/predict", status=200, latency_ms=1.0, inputs=values)
        for values in coastal[list(FEATURE_NAMES)].to_dict("records")
    ]
    first = monitor_on(database, prepared_data_dir, "worker-1", 60)
    second = monitor_on(database, prepared_data_dir, "worker-2", 60)
    prediction_log.write_rows(first.engine, rows)
    try:
        checked = first.check_drift()
        assert checked.status == OK and "inputs" in checked.detail
        runs = store.run_history(first.engine, 10)
        assert len(runs) == 1 and runs[0].summary["share"] > 0

        shown = second.check_drift()
        assert shown.status == OK and shown.detail.startswith("checked by worker-1 at ")
        assert len(store.run_history(first.engine, 10)) == 1, "the second process recomputed"
        assert second._executor is None, "the second process started Evidently"
        assert (
            share_on_gauges("worker-2") == share_on_gauges("worker-1") == runs[0].summary["share"]
        )

        # Once the interval has passed (here: a process with a short one), the next claimer runs.
        third = monitor_on(database, prepared_data_dir, "worker-3", 0.01)
        try:
            assert "checked by" not in third.check_drift().detail
            assert len(store.run_history(first.engine, 10)) == 2
            assert store.lease_holder(first.engine)[0] == "worker-3"
        finally:
            third.close()
    finally:
        first.close()
        second.close()
