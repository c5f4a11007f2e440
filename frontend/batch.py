"""Batch predictions for an uploaded CSV: read it, send it in chunks, line the answers up."""

from __future__ import annotations

import io
import math

import pandas as pd

from frontend.client import BATCH_LIMIT, ApiClient

CHUNK = BATCH_LIMIT
MAX_ROWS = 20_000
"""Rows per upload: 20 API calls, a few seconds; larger files belong to a script, not a page."""


class BatchInputError(ValueError):
    """The uploaded file cannot be sent (not CSV, missing columns, empty, too long)."""


def read_csv(content: bytes, names: list[str]) -> pd.DataFrame:
    """The uploaded rows; the feature columns must all be there (the API checks the values)."""
    try:
        frame = pd.read_csv(io.BytesIO(content))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchInputError(f"the file is not a readable CSV: {exc}") from None
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise BatchInputError(
            f"the file lacks the column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns)) or 'none'})"
        )
    if frame.empty:
        raise BatchInputError("the file has a header but no rows")
    if len(frame) > MAX_ROWS:
        raise BatchInputError(f"the file has {len(frame):,} rows; the limit is {MAX_ROWS:,}")
    return frame


def _cell(value: object) -> object:
    """A number written as text (its column also holds text) as a float, so one typo in a
    column does not make the strict API refuse every row; other text goes as is, for the API
    to refuse that row in its own words."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def records(frame: pd.DataFrame, names: list[str]) -> list[dict[str, object]]:
    """Rows of the feature columns; blanks become null so the API names them. Non-finite
    numbers stay floats: see ``not_finite``."""
    features = frame[names].astype(object)
    rows = features.where(features.notna(), None).to_dict(orient="records")
    return [{name: _cell(value) for name, value in row.items()} for row in rows]


def not_finite(row: dict[str, object]) -> str | None:
    """Why ``row`` cannot be sent (JSON has no inf/NaN, so the API cannot judge it), in the
    API's words for the same rule; None when it can."""
    bad = [
        f"{name} must be a finite number, not {value}"
        for name, value in row.items()
        if isinstance(value, float) and not math.isfinite(value)
    ]
    return "; ".join(bad) or None


def predict_frame(client: ApiClient, frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``frame`` with the predicted value in dollars (or the reasons it was refused, by the API
    or because it cannot be sent) for each row."""
    rows = records(frame, names)
    errors: list[str | None] = [not_finite(row) for row in rows]
    values: list[float | None] = [None] * len(rows)
    lows: list[float | None] = [None] * len(rows)
    highs: list[float | None] = [None] * len(rows)
    versions: list[str | None] = [None] * len(rows)
    sendable = [i for i, reason in enumerate(errors) if reason is None]
    for start in range(0, len(sendable), CHUNK):
        chunk = sendable[start : start + CHUNK]
        answer = client.predict_batch([rows[i] for i in chunk])
        for item in answer.results:
            i = chunk[item.index]
            values[i] = item.prediction_dollars
            if item.interval is not None:
                lows[i], highs[i] = item.interval.low_dollars, item.interval.high_dollars
            if item.prediction_dollars is not None:
                versions[i] = answer.model_version
            if item.errors:
                errors[i] = "; ".join(e.message for e in item.errors)
    out = frame.reset_index(drop=True).copy()
    out["predicted_value"] = values
    out["interval_low"] = lows
    out["interval_high"] = highs
    out["model_version"] = versions
    out["error"] = errors
    return out
