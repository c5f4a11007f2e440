"""Charts of an explanation: the waterfall from the base value to the prediction, the what-if
curve with its refused stretches as gaps, and the champion's global importances."""

from __future__ import annotations

import altair as alt
import pandas as pd

from frontend.api_types import Contribution, Explanation, FeatureImportance, WhatIf

DOLLARS_PER_UNIT = 100_000
"""The API's predictions are in $100,000 (its ``*_dollars`` fields are not, where present)."""
STEP_COLOURS = alt.Scale(
    domain=["base", "raises", "lowers", "prediction"],
    range=["#78909c", "#2e7d32", "#c62828", "#1565c0"],
)


def _number(value: float) -> str:
    return f"{value:g}"


def step_label(item: Contribution) -> str:
    """``MedInc (8)``, ``location (37.88, -122.2)``: the player and the values the user typed."""
    return f"{item.feature} ({', '.join(_number(v) for v in item.values.values())})"


def signed_dollars(value: float) -> str:
    return f"{'+' if value >= 0 else '−'}${abs(value):,.0f}"


def waterfall_frame(explanation: Explanation) -> pd.DataFrame:
    """One row per step: base, each contribution (largest first), then the prediction."""
    rows = [("base value", 0.0, explanation.base_value_dollars, "base", "")]
    level = explanation.base_value_dollars
    for item in sorted(explanation.contributions, key=lambda c: -abs(c.contribution_dollars)):
        end = level + item.contribution_dollars
        kind = "raises" if item.contribution_dollars >= 0 else "lowers"
        rows.append((step_label(item), level, end, kind, signed_dollars(item.contribution_dollars)))
        level = end
    rows.append(("prediction", 0.0, explanation.prediction_dollars, "prediction", ""))
    frame = pd.DataFrame(rows, columns=["step", "start", "end", "kind", "change"])
    frame["order"] = range(len(frame))
    frame["label"] = [
        change or f"${end:,.0f}" for change, end in zip(frame["change"], frame["end"], strict=True)
    ]
    return frame


def waterfall_caption(explanation: Explanation) -> str:
    """The waterfall in words: ``base $206,900 → +$61,200 MedInc (8) → … → $358,950``."""
    frame = waterfall_frame(explanation)
    steps = [f"{row.change} {row.step}" for row in frame.iloc[1:-1].itertuples()]
    return " → ".join(
        [f"base ${explanation.base_value_dollars:,.0f}", *steps]
        + [f"${explanation.prediction_dollars:,.0f}"]
    )


def waterfall(explanation: Explanation) -> alt.LayerChart:
    """Horizontal bars from each step's start to its end, in order, with the change written."""
    frame = waterfall_frame(explanation)
    order = list(frame["step"])
    base = alt.Chart(frame).properties(height=30 * len(frame))
    y = alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelLimit=320))
    bars = base.mark_bar(size=18).encode(
        y=y,
        x=alt.X("start:Q", title="house value ($)", axis=alt.Axis(format="$,.0f")),
        x2="end:Q",
        color=alt.Color("kind:N", scale=STEP_COLOURS, legend=alt.Legend(orient="bottom")),
        tooltip=["step:N", "label:N", alt.Tooltip("end:Q", format="$,.0f", title="running total")],
    )
    text = (
        base.mark_text(align="left", dx=4)
        .encode(y=y, x=alt.X("max_end:Q"), text="label:N")
        .transform_calculate(max_end="max(datum.start, datum.end)")
    )
    return bars + text


def what_if_frame(curve: WhatIf) -> pd.DataFrame:
    """The points, with a ``segment`` number per unbroken predicted stretch (a refused point
    starts a new one, so the line has a gap there) and the refusing rule's message."""
    rows = []
    segment = 0
    for point in curve.points:
        if point.refused is not None:
            segment += 1
        rows.append(
            {
                "value": point.value,
                "prediction": point.prediction_dollars,
                "segment": segment,
                "refused": point.refused.message if point.refused else None,
                "rule": point.refused.rule if point.refused else None,
            }
        )
    return pd.DataFrame(rows)


def what_if(curve: WhatIf, unit: str = "") -> alt.LayerChart:
    """The predicted value across the input's range; refused stretches shaded, the house's
    current value marked."""
    frame = what_if_frame(curve)
    title = f"What if {curve.feature} changed (the rest of the house as it is)"
    axis = alt.X("value:Q", title=f"{curve.feature} {f'({unit})' if unit else ''}".strip())
    predicted = frame[frame["prediction"].notna()]
    line = (
        alt.Chart(predicted, title=title)
        .mark_line(point=True)
        .encode(
            x=axis,
            y=alt.Y("prediction:Q", title="predicted value ($)", axis=alt.Axis(format="$,.0f")),
            detail="segment:N",
            tooltip=[
                alt.Tooltip("value:Q", format=",.4g"),
                alt.Tooltip("prediction:Q", format="$,.0f"),
            ],
        )
    )
    refused = frame[frame["refused"].notna()]
    gaps = (
        alt.Chart(refused)
        .mark_tick(color="#f9a825", thickness=3, size=30)
        .encode(x="value:Q", tooltip=["value:Q", "rule:N", "refused:N"])
    )
    now = pd.DataFrame(
        {
            "value": [curve.current_value],
            "prediction": [curve.current_prediction * DOLLARS_PER_UNIT],
        }
    )
    marker = alt.Chart(now).mark_rule(color="#1565c0", strokeDash=[4, 4]).encode(x="value:Q")
    dot = (
        alt.Chart(now)
        .mark_point(size=140, filled=True, color="#1565c0")
        .encode(x="value:Q", y="prediction:Q", tooltip=["value:Q", "prediction:Q"])
    )
    return line + gaps + marker + dot


def importances(rows: list[FeatureImportance]) -> alt.Chart:
    """Permutation importance per input, largest first, with its spread over repeats."""
    frame = pd.DataFrame([row.model_dump() for row in rows])
    order = list(frame.sort_values("importance_mean", ascending=False)["feature"])
    return (
        alt.Chart(frame, title="Global importance of each input (champion)")
        .mark_bar()
        .encode(
            y=alt.Y("feature:N", sort=order, title=None),
            x=alt.X("importance_mean:Q", title="rise in test RMSE when shuffled ($100,000)"),
            tooltip=[
                "feature:N",
                alt.Tooltip("importance_mean:Q", format=".4f"),
                alt.Tooltip("importance_std:Q", format=".4f"),
            ],
        )
    )
