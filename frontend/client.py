"""A small typed HTTP client for the housing API: the UI's only way to the model and its data.

Every failure becomes one of ``frontend.errors``' exceptions, so a page can say plainly what
went wrong (API down, not ready, input rejected) instead of showing a traceback.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from frontend.api_types import (
    BatchPrediction,
    DriftHistoryItem,
    DriftResult,
    Explanation,
    LogPage,
    LogRecord,
    ModelsOverview,
    Performance,
    Prediction,
    SchemaInfo,
    WhatIf,
)
from frontend.errors import (
    ApiError,
    ApiRequestError,
    ApiUnavailable,
    ApiValidationError,
    FieldError,
)
from frontend.settings import UISettings, get_settings

BATCH_LIMIT = 1000
"""Rows per POST /predict/batch call (the API's limit)."""
LOG_PAGE = 500
"""Rows per GET /predictions call (the API's limit)."""
M = TypeVar("M", bound=BaseModel)


def _detail_text(detail: Any) -> str:
    """A readable message from an error body's ``detail`` (a string or a list of errors)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(_field_error(item).message for item in detail)
    return str(detail)


def _field_error(item: Any) -> FieldError:
    """One entry of a 422 ``detail`` list: the field it names and the API's message."""
    if not isinstance(item, dict):
        return FieldError(None, str(item))
    field = item.get("field")
    if field is None:
        # FastAPI's own shape: loc = ["body", "<field>", ...]; a bare ["body"] is the whole body.
        loc = [str(part) for part in item.get("loc", []) if part not in ("body", "query")]
        field = loc[-1] if loc else None
    message = item.get("message") or item.get("msg") or str(item)
    return FieldError(field, str(message), item.get("rule") or item.get("type"))


def _key(key: str) -> dict[str, str]:
    """The header carrying a read or admin key."""
    return {"X-API-Key": key}


def parse(model: type[M], data: Any, what: str) -> M:
    """``data`` as ``model``; an answer of another shape is an ApiError, not a traceback."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(f"the API's answer to {what} has an unexpected shape: {exc}") from None


def field_errors(body: Any) -> list[FieldError]:
    """The field errors of a 422 body, whatever the list is called."""
    if isinstance(body, dict):
        detail = body.get("detail", body.get("errors", body))
        if isinstance(detail, list):
            return [_field_error(item) for item in detail]
        if isinstance(detail, dict) and "errors" in detail:
            return [_field_error(item) for item in detail["errors"]]
        return [FieldError(None, _detail_text(detail))]
    return [FieldError(None, str(body))]


class ApiClient:
    """Synchronous client with short timeouts; one instance per API URL is reused."""

    def __init__(self, settings: UISettings | None = None) -> None:
        self.settings = settings or get_settings()
        timeout = httpx.Timeout(
            self.settings.api_read_timeout_seconds,
            connect=self.settings.api_connect_timeout_seconds,
        )
        self._http = httpx.Client(base_url=self.settings.api_url.rstrip("/"), timeout=timeout)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def close(self) -> None:
        self._http.close()

    def _request(
        self, method: str, path: str, *, passthrough: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send one request; map transport failures and error statuses (except ``passthrough``,
        whose bodies the caller reads) to ApiError types."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(f"the API at {self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"the API at {self.base_url} cannot be reached") from exc
        if response.is_success or response.status_code in passthrough:
            return response
        try:
            body: Any = response.json()
        except ValueError:
            body = {"detail": response.text.strip() or response.reason_phrase}
        status = response.status_code
        if status == 422:
            raise ApiValidationError(field_errors(body), status)
        message = _detail_text(body.get("detail", body)) if isinstance(body, dict) else str(body)
        if status in (502, 503, 504):
            raise ApiUnavailable(f"the API is not ready ({status}): {message}", status)
        raise ApiError(f"the API answered {status}: {message}", status)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(f"the API sent something that is not JSON for {path}") from exc

    def get_json(self, path: str, **params: Any) -> Any:
        """GET a JSON resource; parameters that are None are left out."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self._json("GET", path, params=clean)

    def get_text(self, path: str) -> str:
        return self._request("GET", path).text

    def post_json(self, path: str, body: Any) -> Any:
        """POST ``body`` as strict JSON; a body JSON cannot carry is an ApiRequestError."""
        try:
            content = json.dumps(body, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ApiRequestError(
                f"the request to POST {path} cannot be sent as JSON: {exc}"
            ) from None
        headers = {"Content-Type": "application/json"}
        return self._json("POST", path, content=content, headers=headers)

    def ping(self) -> float:
        """Seconds GET /health took; raises ApiUnavailable if the API is down."""
        started = time.perf_counter()
        self._request("GET", "/health")
        return time.perf_counter() - started

    # --- typed resources -------------------------------------------------------------------

    def schema(self) -> SchemaInfo:
        """GET /schema: the feature spec the Predict form is built from."""
        return parse(SchemaInfo, self.get_json("/schema"), "GET /schema")

    def predict(self, house: dict[str, float]) -> Prediction:
        """POST /predict for one house; ApiValidationError names the fields the API refused."""
        return parse(Prediction, self.post_json("/predict", house), "POST /predict")

    def explain(self, house: dict[str, float]) -> Explanation:
        """POST /explain: why the model gives this house its value."""
        return parse(Explanation, self.post_json("/explain", house), "POST /explain")

    def what_if(self, house: dict[str, float], feature: str, points: int = 40) -> WhatIf:
        """POST /explain/what-if: the house's value as ``feature`` moves across its range."""
        body = {"house": house, "feature": feature, "points": points}
        return parse(WhatIf, self.post_json("/explain/what-if", body), "POST /explain/what-if")

    def predict_batch(self, houses: list[dict[str, Any]]) -> BatchPrediction:
        """POST /predict/batch for at most BATCH_LIMIT houses; one result per row."""
        if len(houses) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} houses per batch call, got {len(houses)}")
        answer = self.post_json("/predict/batch", {"houses": houses})
        return parse(BatchPrediction, answer, "POST /predict/batch")

    def models(self) -> ModelsOverview:
        """GET /models: training runs side by side and the aliased versions."""
        return parse(ModelsOverview, self.get_json("/models"), "GET /models")

    def metrics_text(self) -> str:
        """GET /metrics: the Prometheus exposition text."""
        return self.get_text("/metrics")

    def drift(self) -> DriftResult:
        """GET /drift: the latest drift result and the background check's state."""
        return parse(DriftResult, self.get_json("/drift"), "GET /drift")

    def drift_history(self, key: str, limit: int = 200) -> list[DriftHistoryItem]:
        """GET /drift/history with a read key: past results, newest first."""
        rows = self._json("GET", "/drift/history", params={"limit": limit}, headers=_key(key))
        return [parse(DriftHistoryItem, row, "GET /drift/history") for row in rows]

    def drift_report(self, key: str) -> str | None:
        """GET /drift/report with a read key: Evidently's HTML, or None while there is none."""
        try:
            return self._request("GET", "/drift/report", headers=_key(key)).text
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise

    def performance(self) -> Performance:
        """GET /performance: live accuracy from feedback."""
        return parse(Performance, self.get_json("/performance"), "GET /performance")

    def predictions(
        self,
        *,
        key: str,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        status: int | None = None,
        endpoint: str | None = None,
    ) -> list[LogRecord]:
        """GET /predictions with a read ``key``: up to ``limit`` rows, newest first, in pages
        of LOG_PAGE.

        Each page continues from the previous one's ``next_cursor`` (one index seek on the
        server, however deep): rows logged while paging are neither repeated nor skipped.
        """
        params = {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "status": status,
            "endpoint": endpoint,
        }
        out: list[LogRecord] = []
        cursor: str | None = None
        while len(out) < limit:
            size = min(LOG_PAGE, limit - len(out))
            page = self._log_page({**params, "limit": size}, cursor, key)
            out.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        return out[:limit]

    def _log_page(self, params: dict[str, Any], cursor: str | None, key: str) -> LogPage:
        query = {k: v for k, v in {**params, "cursor": cursor}.items() if v is not None}
        response = self._request("GET", "/predictions", headers=_key(key), params=query)
        try:
            return LogPage.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiError(f"the API's answer to GET /predictions is unexpected: {exc}") from None

    # --- admin (closed loop): each call carries the API key the user typed ------------------

    def _admin(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return self._request(method, path, headers=_key(key), **kwargs)

    def admin_upload(self, key: str, name: str, payload: bytes) -> dict[str, Any]:
        """POST /data/upload: the stored batch; ApiValidationError lists the rows refused."""
        files = {"file": (name, payload, "text/csv")}
        response = self._admin("POST", "/data/upload", key, files=files, passthrough=(422,))
        body = response.json()
        if response.status_code == 422:
            errors = [
                FieldError(
                    e.get("field"),
                    f"line {e['line']}: {e['message']}" if e.get("line") else e["message"],
                    e.get("rule"),
                )
                for e in body.get("detail", [])
            ]
            refused = ApiValidationError(errors)
            refused.message = body.get("summary", refused.message)
            raise refused
        return body

    def admin_batches(self, key: str) -> list[dict[str, Any]]:
        """GET /data/batches: the stored data batches, oldest first."""
        return self._admin("GET", "/data/batches", key).json()

    def admin_retrain(
        self, key: str, batches: list[str] | None, feedback: bool
    ) -> tuple[str, bool]:
        """POST /admin/retrain: (job id, whether that job was running already)."""
        body = {"batches": batches, "feedback": feedback}
        response = self._admin("POST", "/admin/retrain", key, json=body, passthrough=(409,))
        answer = response.json()
        if response.status_code == 409:
            return answer["job_id"], True
        return answer["id"], False

    def admin_job(self, key: str, job_id: str) -> dict[str, Any]:
        """GET /admin/jobs/{id}: status; at the end the candidates and the gate's decision."""
        return self._admin("GET", f"/admin/jobs/{job_id}", key).json()

    def admin_pending(self, key: str) -> list[dict[str, Any]]:
        """GET /admin/versions/pending: versions that passed the gate and wait for approval."""
        return self._admin("GET", "/admin/versions/pending", key).json()

    def admin_promote(self, key: str, version: str) -> dict[str, Any]:
        """POST /admin/versions/{v}/promote: promoted and reloaded (the gate's verdict too)."""
        return self._admin("POST", f"/admin/versions/{version}/promote", key).json()

    def admin_jobs(self, key: str, limit: int = 10) -> list[dict[str, Any]]:
        """GET /admin/jobs: the newest retraining jobs first."""
        return self._admin("GET", "/admin/jobs", key, params={"limit": limit}).json()
