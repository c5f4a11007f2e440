"""What-if curves: one house's predicted value as one input moves across its valid range.

The range is the feature spec's (``housing.features``), optionally narrowed by the caller. A
point whose house breaks a business rule (``housing.service.rules``: bedrooms beyond rooms, fewer
than one household, a location outside California) is *refused* with the rule, never predicted:
the curve has gaps exactly where /predict would answer 422. The rest are predicted in one
batched call of the service's predict function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from housing.features import BY_NAME, FEATURE_NAMES
from housing.service.rules import RULES, Rule

DEFAULT_POINTS = 40
MAX_POINTS = 200
"""Bounds the work of one request (200 rows cost about one /predict batch)."""

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Point:
    """One point of the curve: a prediction, or the rule that refuses the house."""

    value: float
    prediction: float | None = None
    rule: Rule | None = None
    message: str | None = None


def grid(feature: str, points: int, low: float | None, high: float | None) -> np.ndarray:
    """``points`` evenly spaced values of ``feature`` in [low, high] (default: the spec's)."""
    spec = BY_NAME[feature]
    start = spec.min if low is None else low
    stop = spec.max if high is None else high
    return np.linspace(start, stop, points)


def broken_rule(house: Mapping[str, float]) -> Rule | None:
    """The first business rule ``house`` breaks (spec order of the rule's field), if any."""
    return next((rule for rule in RULES if not rule.check(house)), None)


def curve(
    predict: Predict, house: Mapping[str, float], feature: str, values: np.ndarray
) -> list[Point]:
    """The house with ``feature`` set to each of ``values``: predicted, or refused by a rule."""
    points: list[Point] = []
    rows: list[list[float]] = []
    allowed: list[int] = []
    for value in values.tolist():
        changed = {**house, feature: value}
        rule = broken_rule(changed)
        if rule is None:
            allowed.append(len(points))
            rows.append([changed[name] for name in FEATURE_NAMES])
            points.append(Point(value))
        else:
            points.append(Point(value, rule=rule, message=rule.message(changed)))
    if rows:
        predicted = predict(np.array(rows, dtype=np.float64))
        for index, prediction in zip(allowed, predicted.tolist(), strict=True):
            points[index] = Point(points[index].value, prediction=prediction)
    return points
