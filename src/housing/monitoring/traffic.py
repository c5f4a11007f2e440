"""Talking to a running API as a client does: predict one house or a batch, send feedback.

Shared by `housing simulate` and `housing evaluate`; plain httpx, one connection reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd

from housing.features import FEATURE_NAMES, TARGET


class ApiUnreachableError(RuntimeError):
    """The API did not answer at all (wrong URL, not started)."""


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: status, seconds, JSON body (None if not JSON or no answer)."""

    status: int
    seconds: float
    body: Any


def houses(frame: pd.DataFrame) -> list[dict[str, float]]:
    """The feature columns of ``frame`` as request bodies (spec order, plain floats)."""
    return frame.loc[:, list(FEATURE_NAMES)].astype(float).to_dict(orient="records")


def targets(frame: pd.DataFrame) -> list[float]:
    """The observed values (``MedHouseVal``) of ``frame``."""
    return frame[TARGET.name].astype(float).tolist()


def call(client: httpx.Client, method: str, path: str, body: Any = None) -> Answer:
    """Send one request; a transport error is status 0 (the caller decides what it means)."""
    started = time.perf_counter()
    try:
        response = client.request(method, path, json=body)
    except httpx.TransportError:
        return Answer(0, time.perf_counter() - started, None)
    seconds = time.perf_counter() - started
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return Answer(response.status_code, seconds, payload)


def check_reachable(client: httpx.Client) -> None:
    """Fail early and clearly when nothing answers at the URL."""
    if call(client, "GET", "/health").status == 0:
        raise ApiUnreachableError(f"no API answers at {client.base_url} (is it running?)")


def feedback(client: httpx.Client, prediction_id: str, token: str, actual: float) -> Answer:
    """Report the observed value of an earlier prediction, with the ``feedback_token`` its
    answer (or its batch's) carried."""
    body = {"prediction_id": prediction_id, "actual": actual, "feedback_token": token}
    return call(client, "POST", "/feedback", body)
