"""Diagnostic figures logged with every candidate (matplotlib, no display needed).

Figures are built as ``matplotlib.figure.Figure`` objects, not through ``pyplot``: no global
state, no GUI backend, nothing to close, safe in threads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from housing.features import TARGET


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Scatter of predictions against truth; the diagonal is a perfect model."""
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(actual, predicted, s=3, alpha=0.3)
    low, high = float(np.min(actual)), float(np.max(actual))
    ax.plot([low, high], [low, high], color="black", linewidth=1)
    ax.set(
        xlabel=f"actual {TARGET.name} ({TARGET.unit})",
        ylabel=f"predicted ({TARGET.unit})",
        title=f"{title}: predicted vs actual (test)",
    )
    return fig


def residuals(actual: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Residuals against predictions, and their distribution (the cap at 5 shows up here)."""
    error = np.asarray(actual) - np.asarray(predicted)
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.scatter(predicted, error, s=3, alpha=0.3)
    left.axhline(0, color="black", linewidth=1)
    left.set(xlabel=f"predicted ({TARGET.unit})", ylabel="actual - predicted", title=title)
    right.hist(error, bins=60)
    right.set(xlabel="actual - predicted", ylabel="houses", title="residual distribution")
    return fig


def importances(table: pd.DataFrame, title: str) -> Figure:
    """Horizontal bars of permutation importance (mean +- std RMSE increase)."""
    ordered = table.sort_values("importance_mean")
    fig = Figure(figsize=(6, 0.4 * len(ordered) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(ordered["feature"], ordered["importance_mean"], xerr=ordered["importance_std"])
    ax.set(xlabel="RMSE increase when shuffled ($100k)", title=f"{title}: permutation importance")
    return fig
