"""Live accuracy arithmetic and the monitoring settings' guard rails."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from housing.monitoring.performance import live_performance
from housing.monitoring.settings import MonitoringSettings


def labelled(predictions: list[float], actuals: list[float | None]) -> pd.DataFrame:
    """Newest first, like ``housing.service.log.labelled_predictions``."""
    times = pd.date_range("2024-05-01", periods=len(predictions), freq="min", tz="UTC")[::-1]
    return pd.DataFrame({"prediction": predictions, "actual": actuals, "created_at": times})


def test_rmse_and_mae_over_the_newest_window() -> None:
    frame = labelled([1.0, 2.0, 3.0, 10.0], [2.0, 2.0, 1.0, 0.0])
    result = live_performance(frame, window=3)  # the oldest (error 10) falls out
    assert result.count == 3 and result.window == 3
    assert result.mae == pytest.approx((1 + 0 + 2) / 3)
    assert result.rmse == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert result.newest == frame["created_at"].iloc[0].to_pydatetime()
    assert result.oldest == frame["created_at"].iloc[2].to_pydatetime()
    assert result.as_dict()["newest"].startswith("2024-05-01T00:03:00")


def test_no_labels_gives_no_numbers_rather_than_zero() -> None:
    result = live_performance(labelled([1.0], [None]), window=10)
    assert result.count == 0 and result.rmse is None and result.mae is None
    assert result.as_dict()["oldest"] is None


def test_settings_refuse_a_window_smaller_than_the_minimum(monkeypatch) -> None:
    monkeypatch.setenv("HOUSING_DRIFT_MIN_ROWS", "800")
    monkeypatch.setenv("HOUSING_DRIFT_WINDOW_ROWS", "600")
    with pytest.raises(ValidationError, match="HOUSING_DRIFT_WINDOW_ROWS \\(600\\) must be"):
        MonitoringSettings()
    monkeypatch.setenv("HOUSING_DRIFT_WINDOW_ROWS", "900")
    monkeypatch.setenv("HOUSING_DRIFT_THRESHOLD", "1e-4")
    config = MonitoringSettings().drift_config()
    assert (config.method, config.threshold, config.drift_share) == ("ks", 1e-4, 0.1)
