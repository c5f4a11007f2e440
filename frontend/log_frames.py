"""The prediction log as tables: one row per request, and one row per predicted value."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from frontend.api_types import TARGET_DOLLARS, LogRecord

REQUEST_COLUMNS = [
    "created_at",
    "endpoint",
    "status",
    "outcome",
    "rows",
    "prediction_dollars",
    "actual_dollars",
    "model_version",
    "latency_ms",
    "error",
    "id",
]


def outcome(status: int) -> str:
    """accepted (2xx), rejected (4xx: the client's input or rate) or failed (5xx)."""
    if status < 400:
        return "accepted"
    return "rejected" if status < 500 else "failed"


def _error_text(error: Any) -> str | None:
    """The logged error in one line: messages of field errors, or the detail as text."""
    if error is None:
        return None
    if isinstance(error, list):
        messages = []
        for item in error:
            if isinstance(item, dict) and "errors" in item:  # a batch row: {"index", "errors"}
                messages += [f"row {item.get('index')}: {e.get('message')}" for e in item["errors"]]
            elif isinstance(item, dict) and "message" in item:
                messages.append(str(item["message"]))
            else:
                messages.append(str(item))
        return "; ".join(messages)
    return error if isinstance(error, str) else json.dumps(error)


def predicted_rows(record: LogRecord) -> int:
    """How many predictions the request produced (feedback only quotes one)."""
    if record.endpoint == "/feedback":
        return 0
    if record.predictions is not None:
        return sum(v is not None for v in record.predictions)
    return int(record.prediction is not None)


def _dollars(value: float | None) -> float | None:
    return None if value is None else value * TARGET_DOLLARS


def requests_frame(records: list[LogRecord]) -> pd.DataFrame:
    """One row per logged request, newest first, prediction values in dollars."""
    rows = [
        {
            "created_at": r.created_at,
            "endpoint": r.endpoint,
            "status": r.status,
            "outcome": outcome(r.status),
            "rows": predicted_rows(r),
            "prediction_dollars": _dollars(r.prediction),
            "actual_dollars": _dollars(r.actual),
            "model_version": r.model_version,
            "latency_ms": r.latency_ms,
            "error": _error_text(r.error),
            "id": r.id,
        }
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=REQUEST_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def values_frame(records: list[LogRecord]) -> pd.DataFrame:
    """One row per predicted value (single predictions and every row of a batch)."""
    times: list[Any] = []
    values: list[float] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    for r in records:
        if r.prediction is not None and r.endpoint != "/feedback":
            times.append(r.created_at)
            values.append(r.prediction * TARGET_DOLLARS)
            lows.append(_dollars(r.interval_low))
            highs.append(_dollars(r.interval_high))
        bounds = r.intervals or []
        for index, value in enumerate(r.predictions or ()):
            if value is not None:
                times.append(r.created_at)
                values.append(value * TARGET_DOLLARS)
                pair = bounds[index] if index < len(bounds) else None
                lows.append(_dollars(pair[0]) if pair else None)
                highs.append(_dollars(pair[1]) if pair else None)
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(times, utc=True),
            "value": values,
            "low": pd.Series(lows, dtype="float64"),
            "high": pd.Series(highs, dtype="float64"),
        }
    )
    frame["status"] = "accepted"
    return frame
