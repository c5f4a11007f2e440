"""Smoke test of a running API: the checks CI, `deploy.ps1` and the CD job run after a deploy.

Each check is one HTTP exchange with a clear pass rule; the caller gets every result, so a
failed deploy names what is broken (`housing smoke` exits non-zero naming the failed checks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from housing.features import FEATURES, TARGET, typical_row


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its name, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


class CheckFailed(Exception):
    """A check saw something other than what a healthy service answers."""


def invalid_row() -> tuple[dict[str, float], str]:
    """A typical house with its first feature below the spec's minimum, and that feature's name."""
    feature = FEATURES[0]
    return {**typical_row(), feature.name: feature.min - 1.0}, feature.name


def _expect_status(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise CheckFailed(f"HTTP {response.status_code} (expected {status}): {response.text[:200]}")


def _prediction(body: Any) -> float:
    """The `prediction` number of a /predict answer."""
    value = body.get("prediction") if isinstance(body, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CheckFailed(f"no numeric `prediction` in the answer: {str(body)[:200]}")
    return float(value)


def check_health(client: httpx.Client) -> str:
    """The process is alive (/health answers 200)."""
    _expect_status(client.get("/health"), 200)
    return "200"


def check_ready(client: httpx.Client) -> str:
    """A model is loaded and the log DB is reachable (/ready answers 200)."""
    _expect_status(client.get("/ready"), 200)
    return "200"


def check_predict(client: httpx.Client) -> str:
    """A typical house gets a finite prediction inside the target's physical range."""
    response = client.post("/predict", json=typical_row())
    _expect_status(response, 200)
    value = _prediction(response.json())
    if not (math.isfinite(value) and TARGET.min <= value <= TARGET.max):
        raise CheckFailed(f"prediction {value} is outside [{TARGET.min}, {TARGET.max}]")
    return f"{value:.3f} ({TARGET.unit})"


def check_invalid(client: httpx.Client) -> str:
    """An out-of-range feature is refused with 422 naming the field."""
    row, field = invalid_row()
    response = client.post("/predict", json=row)
    _expect_status(response, 422)
    if field not in response.text:
        raise CheckFailed(f"422 does not name the field {field}: {response.text[:200]}")
    return f"422 names {field}"


def check_metrics(client: httpx.Client) -> str:
    """/metrics is Prometheus text and counts the prediction just made."""
    response = client.get("/metrics")
    _expect_status(response, 200)
    try:
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
    except ValueError as exc:
        raise CheckFailed(f"/metrics is not Prometheus text: {exc}") from None
    requests = families.get("housing_requests")
    served = [
        s
        for s in (requests.samples if requests else [])
        if s.name == "housing_requests_total"
        and s.labels.get("endpoint") == "/predict"
        and s.labels.get("status") == "200"
        and s.value >= 1
    ]
    if not served:
        raise CheckFailed('no housing_requests_total{endpoint="/predict",status="200"} sample >= 1')
    return f"{len(families)} metric families; /predict 200 counted {served[0].value:g}"


CHECKS: dict[str, Callable[[httpx.Client], str]] = {
    "health": check_health,
    "ready": check_ready,
    "predict": check_predict,
    "invalid": check_invalid,
    "metrics": check_metrics,
}


def wait_until_healthy(client: httpx.Client, seconds: float, interval: float = 1.0) -> bool:
    """Poll /health until it answers 200 or ``seconds`` pass (a deploy may still be starting)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.get("/health").status_code == 200:
                return True
        except httpx.TransportError:
            pass  # not listening yet
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def run_smoke(
    url: str,
    *,
    timeout: float = 10.0,
    wait: float = 0.0,
    headers: dict[str, str] | None = None,
) -> list[CheckResult]:
    """Run every check against the API at ``url`` (in order) and return all results."""
    results: list[CheckResult] = []
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers) as client:
        if wait > 0:
            wait_until_healthy(client, wait)
        for name, check in CHECKS.items():
            try:
                results.append(CheckResult(name, True, check(client)))
            except CheckFailed as exc:
                results.append(CheckResult(name, False, str(exc)))
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
                results.append(CheckResult(name, False, f"{type(exc).__name__}: {reason}"))
            except ValueError as exc:  # a body that is not JSON
                results.append(CheckResult(name, False, f"unreadable answer: {exc}"))
    return results


def failed(results: list[CheckResult]) -> list[str]:
    """Names of the checks that did not pass."""
    return [r.name for r in results if not r.ok]
