"""The issue's targets for the champion's conformal intervals and label-free MAE estimate.

Reads the registry's champion (``MLFLOW_TRACKING_URI``, default ``sqlite:///mlflow.db``), its
``intervals/`` artifact and the test split (``HOUSING_DATA_DIR``, default ``data``), and prints
one JSON object per target with the measured figure and whether it meets the target. The test
split is only scored here; the intervals were calibrated on the training split. Usage::

    .venv/bin/python scripts/bench_intervals.py [--trials 200]

The hot-path target (<= 15% CPU per request) is measured with ``make bench-inprocess`` before
and after (see the README), not here.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def _emit(target: str, value: object, ok: bool, **extra: object) -> None:
    print(json.dumps({"target": target, "value": value, "met": bool(ok), **extra}))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="1,000-row windows drawn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from mlflow import MlflowClient

    from housing import intervals, registry
    from housing.data import load_split
    from housing.features import FEATURE_NAMES, TARGET
    from housing.monitoring.estimate_calibrate import calibrate_estimate

    uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    name = os.environ.get("HOUSING_MODEL_NAME", "california-housing")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = registry.champion(client, name)
    if champion is None:
        raise SystemExit(f"no champion of {name!r} in {uri}: run `housing train`")
    bands = intervals.load(champion.run_id, uri)
    if bands is None:
        raise SystemExit(f"champion v{champion.version} has no intervals: run `housing train`")
    pipeline = registry.load_model(name, champion.version, tracking_uri=uri)
    test = load_split(Path(os.environ.get("HOUSING_DATA_DIR", "data")))[1]
    X, y = test.loc[:, list(FEATURE_NAMES)], test[TARGET.name].to_numpy()
    predicted = pipeline.predict(X)
    report = intervals.held_out_report(bands, X, y, predicted)
    print(json.dumps({"champion": champion.version, "candidate": champion.tags.get("candidate"),
                      "level": bands.level, "q": bands.q, "test_rows": len(test)}))  # fmt: skip

    coverage = report["interval_coverage"]
    _emit("test coverage in [0.89, 0.91]", round(coverage, 4), 0.89 <= coverage <= 0.91)
    groups = {k.removeprefix("interval_coverage_"): round(v, 4)
              for k, v in report.items() if k.startswith("interval_coverage_")}  # fmt: skip
    _emit("every MedInc quintile and region >= 0.87", groups, min(groups.values()) >= 0.87)

    width, constant = report["interval_mean_width"], report["interval_const_mean_width"]
    # The constant interval as calibrated (its own coverage), and the constant width that
    # would give exactly the normalised interval's test coverage (read off the test split).
    same = 2 * float(np.quantile(np.abs(y - predicted), coverage))
    _emit(
        "mean width >= 10% narrower than constant-width split conformal",
        round(1 - width / constant, 4),
        width <= 0.9 * constant,
        normalised={"coverage": round(coverage, 4), "mean_width_dollars": round(width * 1e5)},
        constant={
            "coverage": round(report["interval_const_coverage"], 4),
            "mean_width_dollars": round(constant * 1e5),
            "width_at_same_coverage_dollars": round(same * 1e5),
        },
        narrower_at_same_coverage=round(1 - width / same, 4),
    )
    (cell,) = [
        c
        for c in calibrate_estimate(pipeline, bands, test, [1000], args.trials, args.seed)
        if c.shift == "none"
    ]
    _emit(
        "estimated MAE within ±10% of realized on >= 90% of 1,000-row windows",
        round(cell.within_tolerance, 4),
        cell.within_tolerance >= 0.9,
        windows=cell.trials,
        estimated_mae=round(cell.estimated_mae, 4),
        realized_mae=round(cell.realized_mae, 4),
    )


if __name__ == "__main__":
    main()
