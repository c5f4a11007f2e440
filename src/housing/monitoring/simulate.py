"""`housing simulate`: realistic traffic for demos and tests — held-out houses, maybe shifted.

Rows are drawn (seeded) from the held-out test split, after the chosen shift; every request is
paced to ``rate`` per second and the run is bounded both in time (``duration``) and in count
(``rate * duration``, at most ``MAX_REQUESTS``). A share of the predictions gets feedback with
the row's true value, so live accuracy moves too.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from housing.monitoring import traffic
from housing.monitoring.shifts import Shift, apply_shift

MAX_RATE = 500.0
MAX_DURATION = 3600.0
MAX_REQUESTS = 100_000
MAX_BATCH = 1000


@dataclass
class SimulationReport:
    """What a simulation sent and how the API answered."""

    drift: str
    requests: int = 0
    predicted: int = 0
    refused: int = 0
    failed: int = 0
    feedback: int = 0
    feedback_failed: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    model_versions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def traffic_pool(data_dir: Path, drift: Shift | str) -> pd.DataFrame:
    """The held-out split (features and true value) under the shift."""
    from housing.data import load_split

    return apply_shift(load_split(data_dir)[1], drift).reset_index(drop=True)


def check_bounds(rate: float, duration: float, batch: int) -> int:
    """Validate the knobs; return the request budget."""
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"--rate must be in (0, {MAX_RATE:g}] requests per second, got {rate:g}")
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"--duration must be in (0, {MAX_DURATION:g}] seconds, got {duration:g}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"--batch must be in [1, {MAX_BATCH}], got {batch}")
    return min(MAX_REQUESTS, max(1, math.ceil(rate * duration)))


def simulate(
    client: httpx.Client,
    pool: pd.DataFrame,
    *,
    drift: str,
    rate: float,
    duration: float,
    batch: int = 1,
    feedback_share: float = 0.5,
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SimulationReport:
    """Send paced prediction requests (``batch`` houses each) and feedback; return the tally."""
    budget = check_bounds(rate, duration, batch)
    if not 0 <= feedback_share <= 1:
        raise ValueError(f"--feedback must be in [0, 1], got {feedback_share:g}")
    traffic.check_reachable(client)
    rng = np.random.default_rng(seed)
    report = SimulationReport(drift=drift)
    statuses: Counter[str] = Counter()
    versions: set[str] = set()
    start = clock()
    for i in range(budget):
        due, now = start + i / rate, clock()
        if i / rate >= duration or now - start >= duration:  # bounded in time, whatever lags
            break
        if due > now:
            sleep(due - now)
        rows = pool.iloc[rng.integers(0, len(pool), size=batch)]
        answer, labelled = _predict(client, rows)
        report.requests += 1
        statuses[str(answer.status)] += 1
        if answer.status == 200:
            versions.add(str(answer.body["model_version"]))
            report.predicted += len(labelled)
            report.refused += batch - len(labelled)  # batch rows the API rejected
        elif 400 <= answer.status < 500:
            report.refused += batch
        else:
            report.failed += batch
        for prediction_id, token, actual in labelled:
            if rng.random() < feedback_share:
                ok = traffic.feedback(client, prediction_id, token, actual).status == 200
                report.feedback += ok
                report.feedback_failed += not ok
    report.seconds = round(clock() - start, 3)
    report.statuses = dict(sorted(statuses.items()))
    report.model_versions = sorted(versions)
    return report


def _predict(client: httpx.Client, rows: pd.DataFrame) -> tuple[traffic.Answer, list]:
    """One /predict (one row) or /predict/batch call; (prediction id, feedback token, truth) of
    each row served."""
    bodies, truths = traffic.houses(rows), traffic.targets(rows)
    if len(bodies) == 1:
        answer = traffic.call(client, "POST", "/predict", bodies[0])
        served = (
            [(answer.body["prediction_id"], answer.body["feedback_token"], truths[0])]
            if answer.status == 200
            else []
        )
        return answer, served
    answer = traffic.call(client, "POST", "/predict/batch", {"houses": bodies})
    if answer.status != 200:
        return answer, []
    token = answer.body["feedback_token"]
    served = [
        (item["prediction_id"], token, truths[item["index"]])
        for item in answer.body["results"]
        if item.get("prediction_id")
    ]
    return answer, served
