"""Live accuracy: rolling RMSE and MAE over the latest predictions that received feedback."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error


@dataclass(frozen=True)
class LivePerformance:
    """Errors (in $100k, like the target) over ``count`` labelled predictions, newest first."""

    count: int
    window: int
    rmse: float | None
    mae: float | None
    oldest: datetime | None
    newest: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, timestamps in ISO 8601."""
        out = asdict(self)
        for key in ("oldest", "newest"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


def live_performance(labelled: pd.DataFrame, window: int) -> LivePerformance:
    """RMSE/MAE of ``labelled`` (columns prediction, actual, created_at); None when empty."""
    frame = labelled.dropna(subset=["prediction", "actual"]).head(window)
    if frame.empty:
        return LivePerformance(0, window, None, None, None, None)
    actual = frame["actual"].to_numpy(dtype=float)
    predicted = frame["prediction"].to_numpy(dtype=float)
    created = pd.to_datetime(frame["created_at"])
    return LivePerformance(
        count=len(frame),
        window=window,
        rmse=float(np.sqrt(mean_squared_error(actual, predicted))),
        mae=float(mean_absolute_error(actual, predicted)),
        oldest=created.min().to_pydatetime(),
        newest=created.max().to_pydatetime(),
    )
