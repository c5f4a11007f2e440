"""`housing evaluate`: replay a labelled dataset through a running API and report how it did.

Each house is one POST /predict (so latency is what a client sees), its true value goes back
as POST /feedback (so the API's live accuracy learns from the replay too). The report —
accuracy, latency percentiles, failures, model version — is printed and appended as one JSON
line to a history file, rewritten atomically (a reader never sees half a line).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from housing.features import FEATURE_NAMES, TARGET
from housing.fileio import atomic_write_text
from housing.monitoring import traffic


@dataclass(frozen=True)
class Dataset:
    """Labelled houses to replay and where they came from."""

    frame: pd.DataFrame
    source: str
    sha256: str


def load_dataset(path: Path | None, data_dir: Path, limit: int | None) -> Dataset:
    """A labelled CSV (validated against the spec) or, by default, the held-out test split."""
    from housing.data import TEST_FILE, load_split, processed_dir
    from housing.validation import check_frame

    if path is None:
        frame = load_split(data_dir)[1]
        path = processed_dir(data_dir) / TEST_FILE
    else:
        frame = pd.read_csv(path)  # OSError / ParserError are the caller's to report
        check_frame(frame, require_target=True, source=str(path), first_line=2)
    if limit is not None:
        frame = frame.head(limit)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    columns = [*FEATURE_NAMES, TARGET.name]
    return Dataset(frame.loc[:, columns].astype(float).reset_index(drop=True), str(path), digest)


def _percentiles(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ms = np.asarray(seconds) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(ms.max()), 3),
        "mean": round(float(ms.mean()), 3),
    }


def _accuracy(actual: list[float], predicted: list[float]) -> dict[str, float | None]:
    if not actual:
        return {"rmse": None, "mae": None, "r2": None, "mape": None}
    y, p = np.asarray(actual), np.asarray(predicted)
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)) if len(y) > 1 else None,
        "mape": float(mean_absolute_percentage_error(y, p)),
    }


def evaluate(client: httpx.Client, dataset: Dataset, *, feedback: bool = True) -> dict[str, Any]:
    """Replay every row, one request each; return the performance report."""
    traffic.check_reachable(client)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    actual: list[float] = []
    predicted: list[float] = []
    versions: set[str] = set()
    feedback_sent = feedback_failed = 0
    started = time.perf_counter()
    truths = traffic.targets(dataset.frame)
    for house, truth in zip(traffic.houses(dataset.frame), truths, strict=True):
        answer = traffic.call(client, "POST", "/predict", house)
        statuses[str(answer.status)] += 1
        if answer.status != 200:
            continue
        latencies.append(answer.seconds)
        actual.append(truth)
        predicted.append(float(answer.body["prediction"]))
        versions.add(str(answer.body["model_version"]))
        if feedback:
            body = answer.body
            sent = traffic.feedback(client, body["prediction_id"], body["feedback_token"], truth)
            ok = sent.status == 200
            feedback_sent += ok
            feedback_failed += not ok
    seconds = time.perf_counter() - started
    rows = len(dataset.frame)
    return {
        "evaluated_at": datetime.now(UTC).isoformat(),
        "url": str(client.base_url),
        "dataset": {"source": dataset.source, "sha256": dataset.sha256, "rows": rows},
        "model_versions": sorted(versions),
        "sent": rows,
        "predicted": len(predicted),
        "failed": rows - len(predicted),
        "statuses": dict(sorted(statuses.items())),
        "feedback_sent": feedback_sent,
        "feedback_failed": feedback_failed,
        "accuracy": _accuracy(actual, predicted),
        "latency_ms": _percentiles(latencies),
        "seconds": round(seconds, 3),
        "requests_per_second": round(rows / seconds, 1) if seconds > 0 else None,
    }


def append_history(path: Path, report: dict[str, Any]) -> None:
    """Add ``report`` as one JSON line to ``path``, rewriting the file atomically."""
    path = Path(path)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    atomic_write_text(path, existing + json.dumps(report, sort_keys=True) + "\n")
