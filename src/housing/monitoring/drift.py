"""Data drift: the training reference sample against recent inputs, through Evidently.

The only module that talks to Evidently (``Report`` + ``DataDriftPreset``); everything else
gets a plain ``DriftResult``. The feature list comes from ``housing.features``.

Why two-sample Kolmogorov-Smirnov with p < 1e-6, and "one drifted feature is dataset drift"
(measured by `housing drift-calibrate`): the ratio features (AveRooms, AveBedrms, AveOccup,
Population) have extreme outliers, so Evidently's default for large references (Wasserstein
distance / reference std >= 0.1) fires on plain held-out rows (its noise reaches 0.3 at 500
rows), and binned methods (PSI, Jensen-Shannon) squash those columns into one bin. K-S is
rank-based, so outliers do not move it. On held-out rows its smallest p-value over the eight
features stays above 1e-5 at 500-1,000 rows, while each realistic shift (incomes up 30%,
coastal houses only, housing stock ten years older) drives at least one feature below 1e-10.
A p-value grows more sensitive with sample size, which is why the service compares a bounded
window of recent rows (``drift_window_rows``), never an ever-growing history. A shift usually
moves one column (income), so the dataset threshold is one feature in eight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from housing.features import FEATURE_NAMES

DEFAULT_METHOD = "ks"
DEFAULT_THRESHOLD = 1e-6
DEFAULT_DRIFT_SHARE = 0.1


class DriftInputError(ValueError):
    """A frame handed to drift detection cannot be compared (empty, or a feature missing)."""


@dataclass(frozen=True)
class DriftConfig:
    """How drift is decided: Evidently's method name, its per-feature threshold, dataset share."""

    method: str = DEFAULT_METHOD
    threshold: float = DEFAULT_THRESHOLD
    drift_share: float = DEFAULT_DRIFT_SHARE


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: Evidently's score (a p-value for K-S), its method, drifted or not."""

    feature: str
    score: float
    method: str
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """The dataset verdict, one ``FeatureDrift`` per feature (spec order) and the HTML report."""

    share: float
    detected: bool
    drift_share: float
    features: tuple[FeatureDrift, ...]
    reference_rows: int
    current_rows: int
    html: str | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the HTML): what `/drift` and `housing drift` print."""
        return {
            "share": self.share,
            "detected": self.detected,
            "drift_share": self.drift_share,
            "drifted_features": [f.feature for f in self.features if f.drifted],
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "features": [asdict(f) for f in self.features],
        }


def feature_frame(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    """The spec's features of ``frame`` as floats, in spec order; extra columns are dropped."""
    missing = [name for name in FEATURE_NAMES if name not in frame.columns]
    if missing:
        raise DriftInputError(f"{role} data lacks feature column(s): {', '.join(missing)}")
    if frame.empty:
        raise DriftInputError(f"{role} data has no rows")
    try:
        return frame.loc[:, list(FEATURE_NAMES)].astype(float).reset_index(drop=True)
    except (TypeError, ValueError) as exc:
        raise DriftInputError(f"{role} data has a non-numeric feature value: {exc}") from None


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig = DriftConfig(),
    *,
    with_html: bool = False,
) -> DriftResult:
    """Run Evidently's ``DataDriftPreset`` on the spec's features; optionally keep its HTML."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = feature_frame(reference, "reference")
    cur = feature_frame(current, "current")
    preset = DataDriftPreset(
        columns=list(FEATURE_NAMES),
        method=config.method,
        threshold=config.threshold,
        drift_share=config.drift_share,
    )
    snapshot = Report([preset], include_tests=True).run(cur, ref)
    summary = snapshot.dict()
    result = _parse(summary["metrics"], summary["tests"], config)
    html = snapshot.get_html_str(as_iframe=False) if with_html else None
    return DriftResult(
        share=result[0],
        detected=result[1],
        drift_share=config.drift_share,
        features=result[2],
        reference_rows=len(ref),
        current_rows=len(cur),
        html=html,
    )


def _parse(
    metrics: Sequence[dict[str, Any]], tests: Sequence[dict[str, Any]], config: DriftConfig
) -> tuple[float, bool, tuple[FeatureDrift, ...]]:
    """Read Evidently's snapshot: share from DriftedColumnsCount, verdicts from its tests."""
    share: float | None = None
    scores: dict[str, float] = {}
    for metric in metrics:
        kind = metric["config"]["type"]
        if kind.endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith(":ValueDrift"):
            scores[metric["config"]["column"]] = float(metric["value"])
    drifted: dict[str, bool] = {}
    dataset_failed: bool | None = None
    for test in tests:
        params = test["metric_config"]["params"]
        failed = test["status"] == "FAIL"
        if params["type"].endswith(":ValueDrift"):
            drifted[params["column"]] = failed
        elif params["type"].endswith(":DriftedColumnsCount"):
            dataset_failed = failed
    complete = set(scores) == set(drifted) == set(FEATURE_NAMES)
    if share is None or dataset_failed is None or not complete:
        raise RuntimeError("unexpected Evidently report layout (is evidently pinned to 0.7?)")
    features = tuple(
        FeatureDrift(name, scores[name], config.method, config.threshold, drifted[name])
        for name in FEATURE_NAMES
    )
    return share, dataset_failed, features
