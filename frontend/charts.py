"""Altair charts for the pages, built from small pre-aggregated frames.

Aggregation happens in pandas first so a page with 10,000 logged predictions ships a few hundred
points to the browser, not 10,000 (and stays under Altair's row limit).
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

OUTCOME_COLOURS = alt.Scale(
    domain=["accepted", "rejected", "failed"], range=["#2e7d32", "#f9a825", "#c62828"]
)


def time_bucket(span: pd.Timedelta) -> str:
    """A pandas frequency that cuts ``span`` into at most ~150 buckets."""
    for freq, width in (
        ("1s", pd.Timedelta(seconds=1)),
        ("10s", pd.Timedelta(seconds=10)),
        ("1min", pd.Timedelta(minutes=1)),
        ("10min", pd.Timedelta(minutes=10)),
        ("1h", pd.Timedelta(hours=1)),
        ("6h", pd.Timedelta(hours=6)),
        ("1D", pd.Timedelta(days=1)),
    ):
        if span / width <= 150:
            return freq
    return "7D"


def per_bucket(
    frame: pd.DataFrame, time_col: str, value_col: str, group_col: str = "status"
) -> pd.DataFrame:
    """Rows and the median/quartiles of ``value_col`` per time bucket and group."""
    columns = ["time", group_col, "requests", "median", "q25", "q75"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    times = pd.to_datetime(frame[time_col], utc=True)
    freq = time_bucket(times.max() - times.min())
    grouped = frame.assign(time=times.dt.floor(freq)).groupby(["time", group_col], observed=True)
    out = grouped.size().rename("requests").to_frame()
    values = grouped[value_col]
    out["median"] = values.median()
    out["q25"] = values.quantile(0.25)
    out["q75"] = values.quantile(0.75)
    return out.reset_index()[columns]


def requests_per_bucket(frame: pd.DataFrame, time_col: str, group_col: str) -> pd.DataFrame:
    """Requests per time bucket and group, with empty buckets as zeros (gaps are real)."""
    if frame.empty:
        return pd.DataFrame(columns=["time", group_col, "requests"])
    times = pd.to_datetime(frame[time_col], utc=True)
    freq = time_bucket(times.max() - times.min())
    counts = (
        frame.assign(time=times.dt.floor(freq))
        .groupby(["time", group_col], observed=True)
        .size()
        .unstack(fill_value=0)
    )
    grid = pd.date_range(counts.index.min(), counts.index.max(), freq=freq, name="time")
    counts = counts.reindex(grid, fill_value=0)
    return counts.reset_index().melt("time", var_name=group_col, value_name="requests")


def requests_over_time(buckets: pd.DataFrame) -> alt.Chart:
    """Stacked bars: requests per time bucket, coloured by outcome."""
    return (
        alt.Chart(buckets, title="Requests over time")
        .mark_area(interpolate="step-after", opacity=0.85)
        .encode(
            x=alt.X("time:T", title=None),
            y=alt.Y("sum(requests):Q", title="requests per interval").stack("zero"),
            color=alt.Color("outcome:N", scale=OUTCOME_COLOURS, legend=alt.Legend(orient="bottom")),
            tooltip=["time:T", "outcome:N", "requests:Q"],
        )
    )


def predictions_over_time(buckets: pd.DataFrame) -> alt.LayerChart:
    """Median predicted value per bucket with its interquartile band."""
    base = alt.Chart(buckets, title="Predicted value over time (median and IQR)")
    band = base.mark_area(opacity=0.25).encode(
        x=alt.X("time:T", title=None),
        y=alt.Y("q25:Q", title="predicted value ($)", axis=alt.Axis(format="$,.0f")),
        y2="q75:Q",
    )
    line = base.mark_line(point=True).encode(
        x="time:T",
        y="median:Q",
        tooltip=[
            "time:T",
            alt.Tooltip("median:Q", format="$,.0f"),
            alt.Tooltip("requests:Q", title="predictions"),
        ],
    )
    return band + line


def histogram(values: pd.Series, bins: int = 40) -> pd.DataFrame:
    """Counts per bin (left, right edges) of ``values``."""
    clean = values.dropna().to_numpy(dtype=float)
    if clean.size == 0:
        return pd.DataFrame(columns=["left", "right", "count"])
    counts, edges = np.histogram(clean, bins=bins)
    return pd.DataFrame({"left": edges[:-1], "right": edges[1:], "count": counts})


def distribution(hist: pd.DataFrame, title: str = "Distribution of predicted values") -> alt.Chart:
    """Histogram bars from ``histogram()``."""
    return (
        alt.Chart(hist, title=title)
        .mark_bar()
        .encode(
            x=alt.X(
                "left:Q", bin="binned", title="predicted value ($)", axis=alt.Axis(format="$,.0f")
            ),
            x2="right:Q",
            y=alt.Y("count:Q", title="predictions"),
            tooltip=[
                alt.Tooltip("left:Q", format="$,.0f", title="from"),
                alt.Tooltip("right:Q", format="$,.0f", title="to"),
                "count:Q",
            ],
        )
    )


P_VALUE_FLOOR = 1e-16
"""p-values this small are shown at the floor (a log axis cannot show 0)."""


def feature_drift(features: pd.DataFrame) -> alt.LayerChart:
    """Per-feature drift score against its threshold, red where the test flags drift.

    K-S and other tests score with a p-value (drift = below the threshold), spread over many
    orders of magnitude: those get a log axis. Distance methods score upwards from 0: linear.
    """
    data = features.copy()
    p_values = bool(((data["score"] >= 0) & (data["score"] <= 1)).all())
    if p_values:
        data["shown"] = data["score"].clip(lower=P_VALUE_FLOOR)
        lowest = min(float(data["shown"].min()), float(data["threshold"].min()) / 100)
        decades = list(range(0, math.floor(math.log10(max(lowest, P_VALUE_FLOOR))) - 1, -1))
        step = max(1, len(decades) // 6)
        x = alt.X(
            "shown:Q",
            title="p-value (log scale; drift below the red line)",
            scale=alt.Scale(type="log", domain=[10.0 ** decades[-1], 1]),
            axis=alt.Axis(values=[10.0**d for d in decades[::step]], format=".0e", grid=False),
        )
    else:
        data["shown"] = data["score"]
        x = alt.X("shown:Q", title="drift score (drift above the red line)")
    # Dots, not bars: a bar on a log axis has no baseline.
    dots = (
        alt.Chart(data, title="Drift score per feature")
        .mark_circle(size=160, opacity=0.9)
        .encode(
            x=x,
            y=alt.Y("feature:N", sort=None, title=None),
            color=alt.Color(
                "drifted:N",
                scale=alt.Scale(domain=[False, True], range=["#2e7d32", "#c62828"]),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                "feature:N",
                alt.Tooltip("score:Q", format=".2e"),
                "method:N",
                alt.Tooltip("threshold:Q", format=".1e"),
                "drifted:N",
            ],
        )
    )
    rule = (
        alt.Chart(data.head(1))
        .mark_rule(color="#c62828", strokeDash=[4, 4])
        .encode(x="threshold:Q")
    )
    return dots + rule


def drift_over_time(history: pd.DataFrame, threshold: float | None = None) -> alt.Chart:
    """Drift share of each computed result over time, with the alert threshold if known."""
    line = (
        alt.Chart(history, title="Drift share over time")
        .mark_line(point=True)
        .encode(
            x=alt.X("computed_at:T", title=None),
            y=alt.Y("share:Q", title="share of drifted features", scale=alt.Scale(domain=[0, 1])),
            tooltip=["computed_at:T", alt.Tooltip("share:Q", format=".0%"), "detected:N"],
        )
    )
    if threshold is None:
        return line
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#c62828", strokeDash=[4, 4])
        .encode(y="threshold:Q")
    )
    return line + rule


MODEL_METRICS = {"rmse": "RMSE", "mae": "MAE", "r2": "R²", "fit_seconds": "fit time (s)"}


def model_metrics(candidates: pd.DataFrame) -> alt.FacetChart:
    """RMSE, MAE, R² and fit time of every candidate, one bar per training run."""
    long = candidates.melt(
        id_vars=["run", "candidate"], value_vars=list(MODEL_METRICS), var_name="metric"
    )
    long["metric"] = long["metric"].map(MODEL_METRICS)
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("candidate:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset="run:N",
            y=alt.Y("value:Q", title=None),
            color=alt.Color("run:N", legend=alt.Legend(orient="bottom", title="training run")),
            tooltip=["run:N", "candidate:N", "metric:N", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=170, height=200)
        .facet(column=alt.Column("metric:N", title=None, sort=list(MODEL_METRICS.values())))
        .resolve_scale(y="independent")
    )
