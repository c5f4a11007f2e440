"""Prediction intervals for people: one sentence and the range drawn on an axis of dollars."""

from __future__ import annotations

import altair as alt
import pandas as pd

from frontend.api_types import Interval


def rounded(value: float, step: float) -> str:
    """Dollars rounded to ``step`` (a range this wide makes the last digits noise)."""
    return f"${round(value / step) * step:,.0f}"


def sentence(prediction_dollars: float, interval: Interval) -> str:
    """ "$222,600 — 90% between $171,000 and $289,000"."""
    return (
        f"{rounded(prediction_dollars, 100)} — {interval.level:.0%} between "
        f"{rounded(interval.low_dollars, 1000)} and {rounded(interval.high_dollars, 1000)}"
    )


def range_chart(prediction_dollars: float, interval: Interval) -> alt.LayerChart:
    """The interval as a bar on a dollar axis with the prediction as a tick inside it."""
    frame = pd.DataFrame(
        [{"low": interval.low_dollars, "high": interval.high_dollars, "value": prediction_dollars}]
    )
    base = alt.Chart(frame, title=f"{interval.level:.0%} prediction interval", height=60)
    axis = alt.Axis(format="$,.0f", title=None)
    band = base.mark_bar(height=18, opacity=0.35, color="#2e7d32").encode(
        x=alt.X("low:Q", axis=axis, scale=alt.Scale(zero=False)),
        x2="high:Q",
        tooltip=[alt.Tooltip("low:Q", format="$,.0f"), alt.Tooltip("high:Q", format="$,.0f")],
    )
    tick = base.mark_tick(thickness=3, size=28, color="#c62828").encode(
        x="value:Q", tooltip=[alt.Tooltip("value:Q", title="prediction", format="$,.0f")]
    )
    return band + tick


def band_over_time(values: pd.DataFrame, rows: int = 300) -> alt.LayerChart:
    """The newest ``rows`` predicted values (columns created_at, value, low, high in dollars)
    with each one's interval as a vertical rule."""
    frame = values.dropna(subset=["low", "high"]).sort_values("created_at").tail(rows)
    base = alt.Chart(frame, title="Predictions and their intervals (newest)")
    axis = alt.Axis(format="$,.0f")
    rules = base.mark_rule(opacity=0.35, color="#2e7d32").encode(
        x=alt.X("created_at:T", title=None),
        y=alt.Y("low:Q", title="predicted value ($)", axis=axis),
        y2="high:Q",
    )
    points = base.mark_point(filled=True, size=18, color="#c62828").encode(
        x="created_at:T",
        y="value:Q",
        tooltip=[
            "created_at:T",
            alt.Tooltip("value:Q", format="$,.0f"),
            alt.Tooltip("low:Q", format="$,.0f"),
            alt.Tooltip("high:Q", format="$,.0f"),
        ],
    )
    return rules + points
