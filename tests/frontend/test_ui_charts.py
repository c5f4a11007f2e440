"""Chart data is aggregated in pandas before it reaches the browser."""

from __future__ import annotations

import pandas as pd

from frontend.charts import histogram, per_bucket, requests_per_bucket, time_bucket


def test_time_buckets_keep_charts_small() -> None:
    assert time_bucket(pd.Timedelta(seconds=90)) == "1s"
    assert time_bucket(pd.Timedelta(hours=2)) == "1min"
    assert time_bucket(pd.Timedelta(days=30)) == "6h"


def test_per_bucket_counts_and_medians_by_status() -> None:
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(
                ["2024-01-01T00:00:00Z", "2024-01-01T00:00:30Z", "2024-01-01T02:00:00Z"]
            ),
            "status": ["accepted", "accepted", "rejected"],
            "value": [100.0, 300.0, None],
        }
    )
    out = per_bucket(frame, "created_at", "value")
    accepted = out[out["status"] == "accepted"]
    assert accepted["requests"].sum() == 2
    assert accepted["median"].iloc[0] == 200.0
    assert out[out["status"] == "rejected"]["requests"].sum() == 1


def test_histogram_counts_every_value_once() -> None:
    values = pd.Series([1.0, 2.0, 2.5, None, 9.0])
    hist = histogram(values, bins=4)
    assert hist["count"].sum() == 4
    assert hist["left"].iloc[0] == 1.0 and hist["right"].iloc[-1] == 9.0
    assert histogram(pd.Series([], dtype=float)).empty


def test_requests_per_bucket_fills_quiet_buckets_with_zeros() -> None:
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(
                ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T00:05:00Z"]
            ),
            "outcome": ["accepted", "rejected", "accepted"],
        }
    )
    out = requests_per_bucket(frame, "created_at", "outcome")
    accepted = out[out["outcome"] == "accepted"].set_index("time")["requests"]
    assert accepted.sum() == 2
    assert len(accepted) == 31  # ten-second buckets over five minutes, quiet ones at zero
    assert (accepted.iloc[1:-1] == 0).all()
