"""Measure the drift rule's false-alarm and detection rates on the real data (a benchmark).

`housing drift-calibrate` draws many current windows from the held-out split, unshifted and
under each shift, runs the real Evidently rule on each, and reports how often dataset drift was
flagged plus the range of the smallest per-feature score: the margin the thresholds leave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from housing.monitoring.drift import DriftConfig, detect_drift
from housing.monitoring.shifts import Shift, apply_shift


@dataclass(frozen=True)
class CalibrationRow:
    """One (shift, window size) cell: detection rate and the range of the smallest score."""

    shift: str
    rows: int
    trials: int
    detected_rate: float
    min_score_lowest: float
    min_score_highest: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def calibrate(
    reference: pd.DataFrame,
    held_out: pd.DataFrame,
    sizes: Sequence[int],
    trials: int,
    config: DriftConfig = DriftConfig(),
    seed: int = 0,
) -> list[CalibrationRow]:
    """Run ``trials`` drift checks per shift and window size; sample with replacement if short."""
    rng = np.random.default_rng(seed)
    rows: list[CalibrationRow] = []
    for shift in Shift:
        pool = apply_shift(held_out, shift)
        for size in sizes:
            detected = 0
            lowest: list[float] = []
            for _ in range(trials):
                current = pool.sample(
                    size, replace=len(pool) < size, random_state=int(rng.integers(2**31))
                )
                result = detect_drift(reference, current, config)
                detected += result.detected
                lowest.append(min(f.score for f in result.features))
            rows.append(
                CalibrationRow(
                    shift.value, size, trials, detected / trials, min(lowest), max(lowest)
                )
            )
    return rows
