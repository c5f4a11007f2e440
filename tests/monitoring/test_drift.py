"""Drift detection on the real data with real Evidently: it must not cry wolf and must not sleep."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from housing.features import FEATURE_NAMES
from housing.monitoring import shifts
from housing.monitoring.calibrate import calibrate
from housing.monitoring.drift import DriftConfig, DriftInputError, detect_drift

pytestmark = pytest.mark.slow  # each Evidently run takes ~0.5 s


@pytest.mark.parametrize("rows,seed", [(500, 1), (500, 2), (1000, 3), (1000, 4)])
def test_held_out_rows_do_not_cry_wolf(
    reference: pd.DataFrame, held_out: pd.DataFrame, rows: int, seed: int
) -> None:
    result = detect_drift(reference, held_out.sample(rows, random_state=seed))
    assert not result.detected, result.as_dict()
    assert result.share == 0.0
    assert result.current_rows == rows and result.reference_rows == len(reference)
    assert min(f.score for f in result.features) > 10 * result.features[0].threshold  # margin


@pytest.mark.parametrize(
    "shift,moved",
    [
        (shifts.Shift.income, {"MedInc"}),
        (shifts.Shift.age, {"HouseAge"}),
        (shifts.Shift.coastal, {"Latitude"}),
    ],
)
@pytest.mark.parametrize("seed", [5, 6])
def test_realistic_shifts_are_detected(
    reference: pd.DataFrame,
    held_out: pd.DataFrame,
    shift: shifts.Shift,
    moved: set[str],
    seed: int,
) -> None:
    current = shifts.apply_shift(held_out, shift).sample(500, random_state=seed)
    result = detect_drift(reference, current)
    drifted = {f.feature for f in result.features if f.drifted}
    assert result.detected, result.as_dict()
    assert moved <= drifted
    assert result.share == len(drifted) / len(FEATURE_NAMES) >= result.drift_share
    for f in result.features:
        assert f.drifted == (f.score < f.threshold)  # K-S: the score is a p-value


def test_result_shape_and_html_report(reference: pd.DataFrame, held_out: pd.DataFrame) -> None:
    current = shifts.apply_shift(held_out.sample(600, random_state=7), "income")
    config = DriftConfig(method="ks", threshold=1e-6, drift_share=0.5)
    result = detect_drift(reference, current, config, with_html=True)
    assert [f.feature for f in result.features] == list(FEATURE_NAMES)
    assert {f.method for f in result.features} == {"ks"}
    assert result.drift_share == 0.5 and not result.detected  # one feature of eight < 50%
    summary = json.loads(json.dumps(result.as_dict()))
    assert set(summary) >= {"share", "detected", "features", "drifted_features"}
    assert summary["drifted_features"] == ["MedInc"]
    assert summary["features"][0] == {
        "feature": "MedInc",
        "score": result.features[0].score,
        "method": "ks",
        "threshold": 1e-6,
        "drifted": True,
    }
    assert result.html is not None
    assert result.html.lstrip().startswith("<!DOCTYPE html>") and "MedInc" in result.html


def test_extra_columns_are_ignored_and_missing_ones_named(
    reference: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    with pytest.raises(DriftInputError, match="current data lacks feature column\\(s\\): AveOccup"):
        detect_drift(reference, held_out.drop(columns=["AveOccup"]))
    with pytest.raises(DriftInputError, match="current data has no rows"):
        detect_drift(reference, held_out.iloc[:0])
    with pytest.raises(DriftInputError, match="reference data lacks"):
        detect_drift(reference[["MedInc"]], held_out)


def test_calibration_benchmark_runs_the_real_rule(
    reference: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    cells = {cell.shift: cell for cell in calibrate(reference, held_out, [500], trials=1)}
    assert set(cells) == {s.value for s in shifts.Shift}
    assert cells["none"].detected_rate == 0.0 and cells["none"].min_score_lowest > 1e-6
    for shift in ("income", "coastal", "age"):
        assert cells[shift].detected_rate == 1.0 and cells[shift].min_score_highest < 1e-6
