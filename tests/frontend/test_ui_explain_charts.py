"""The explanation charts' data: a waterfall that lands on the prediction, a what-if curve whose
refused stretches are gaps."""

from __future__ import annotations

from frontend.api_types import Explanation, WhatIf
from frontend.explain_charts import waterfall, waterfall_caption, waterfall_frame, what_if_frame


def explanation() -> Explanation:
    contributions = [
        {"feature": "AveRooms", "inputs": ["AveRooms"], "value": 5.2, "values": {"AveRooms": 5.2},
         "contribution": -0.1, "contribution_dollars": -10_000.0},
        {"feature": "MedInc", "inputs": ["MedInc"], "value": 8.0, "values": {"MedInc": 8.0},
         "contribution": 0.612, "contribution_dollars": 61_200.0},
        {"feature": "location", "inputs": ["Latitude", "Longitude"], "value": None,
         "values": {"Latitude": 37.88, "Longitude": -122.23},
         "contribution": 1.0, "contribution_dollars": 100_000.0},
    ]  # fmt: skip
    return Explanation.model_validate(
        {"prediction": 3.581, "prediction_dollars": 358_100.0, "base_value": 2.069,
         "base_value_dollars": 206_900.0, "contributions": contributions,
         "model_name": "m", "model_version": "1", "method": "exact"}  # fmt: skip
    )


def test_the_waterfall_walks_from_the_base_to_the_prediction_largest_first() -> None:
    frame = waterfall_frame(explanation())
    assert list(frame["step"]) == [
        "base value", "location (37.88, -122.23)", "MedInc (8)", "AveRooms (5.2)", "prediction",
    ]  # fmt: skip
    steps = frame.iloc[1:-1]
    assert steps["start"].iloc[0] == 206_900.0
    assert (steps["start"].iloc[1:].to_numpy() == steps["end"].iloc[:-1].to_numpy()).all()
    assert steps["end"].iloc[-1] == frame["end"].iloc[-1] == 358_100.0
    assert list(steps["change"]) == ["+$100,000", "+$61,200", "−$10,000"]
    assert list(steps["kind"]) == ["raises", "raises", "lowers"]
    assert waterfall_caption(explanation()) == (
        "base $206,900 → +$100,000 location (37.88, -122.23) → +$61,200 MedInc (8) → "
        "−$10,000 AveRooms (5.2) → $358,100"
    )
    assert waterfall(explanation()).to_dict()["layer"]


def test_refused_points_split_the_what_if_curve() -> None:
    refused = {"rule": "inside_california", "message": "outside California"}
    points = [
        {"value": -124.0, "refused": refused},
        {"value": -120.0, "prediction_dollars": 200_000.0},
        {"value": -118.0, "prediction_dollars": 250_000.0},
        {"value": -116.0, "refused": refused},
        {"value": -115.0, "prediction_dollars": 90_000.0},
    ]
    curve = WhatIf.model_validate(
        {"feature": "Longitude", "current_value": -118.0, "current_prediction": 2.5,
         "points": points, "refused": 2, "model_version": "1"}  # fmt: skip
    )
    frame = what_if_frame(curve)
    predicted = frame[frame["prediction"].notna()]
    assert predicted.groupby("segment")["value"].apply(list).tolist() == [
        [-120.0, -118.0],
        [-115.0],
    ]
    assert frame["rule"].dropna().tolist() == ["inside_california"] * 2
