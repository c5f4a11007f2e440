"""Batch predictions for an uploaded CSV: read it, send it in chunks, line the answers up."""

from __future__ import annotations

import io

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


def records(frame: pd.DataFrame, names: list[str]) -> list[dict[str, object]]:
    """JSON-ready rows of the feature columns; blanks become null so the API names them."""
    features = frame[names].astype(object)
    return features.where(features.notna(), None).to_dict(orient="records")


def predict_frame(client: ApiClient, frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``frame`` with the predicted value in dollars (or the API's reasons) for each row."""
    rows = records(frame, names)
    values: list[float | None] = []
    versions: list[str | None] = []
    errors: list[str | None] = []
    for start in range(0, len(rows), CHUNK):
        answer = client.predict_batch(rows[start : start + CHUNK])
        for item in sorted(answer.results, key=lambda r: r.index):
            values.append(item.prediction_dollars)
            versions.append(answer.model_version if item.prediction_dollars is not None else None)
            errors.append("; ".join(e.message for e in item.errors) if item.errors else None)
    out = frame.reset_index(drop=True).copy()
    out["predicted_value"] = values
    out["model_version"] = versions
    out["error"] = errors
    return out
