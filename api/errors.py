"""Error responses: plain words for clients, a log row for every rejected logged request.

A request to /predict, /predict/batch or /feedback is answered only after its row (accepted,
rejected or failed) is committed; if the row cannot be written the answer is 503 instead.
No handler ever returns a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.deps import started
from housing.features import FEATURE_NAMES
from housing.service import log as prediction_log
from housing.service.batcher import (
    LogUnavailableError,
    ModelUnavailableError,
    PredictionFailedError,
)
from housing.service.bounds import bounded_body, bounded_errors
from housing.service.rules import describe
from housing.service.schemas import ErrorBody

logger = logging.getLogger("housing.service.api")

KNOWN_FIELDS = frozenset(FEATURE_NAMES) | {"prediction_id", "actual", "houses", "body"}
"""Values of the ``field`` metric label; anything else counts as "other" (bounded labels)."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "Body larger than HOUSING_MAX_BODY_BYTES"},
    429: {"description": "Rate limit (HOUSING_RATE_LIMIT) exceeded for this client"},
    500: {"description": "The model failed (logged; no stack trace is returned)"},
    503: {"description": "No model loaded yet, or the prediction log cannot be written"},
}


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong X-API-Key (a read or admin key)"},
    403: {"model": ErrorBody, "description": "Neither HOUSING_READ_KEYS nor HOUSING_API_KEY set"},
}


def _body(status: int, detail: Any, request_id: str | None = None) -> JSONResponse:
    headers = {"X-Request-ID": request_id} if request_id else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def log_and_respond(
    request: Request,
    status: int,
    detail: Any,
    *,
    inputs: Any = None,
    raw_body: str | None = None,
    error: Any = None,
) -> JSONResponse:
    """Answer a rejected request, after logging it if its endpoint is a logged one."""
    endpoint = request.scope["path"]
    runtime = getattr(request.app.state, "runtime", None)
    if endpoint not in prediction_log.LOGGED_ENDPOINTS or runtime is None:
        return _body(status, detail)
    request_id = prediction_log.new_id()
    if isinstance(inputs, dict) and "feedback_token" in inputs:  # a secret: never logged
        inputs = {k: v for k, v in inputs.items() if k != "feedback_token"}
    inputs, raw_body = bounded_body(inputs, raw_body)
    row = prediction_log.new_row(
        endpoint,
        request_id,
        status=status,
        inputs=inputs,
        raw_body=raw_body,
        error=bounded_errors(error if error is not None else detail),
    )
    extra = {"request_id": request_id, "endpoint": endpoint, "status": status}
    try:
        await runtime.batcher.record(row, started(request))
    except LogUnavailableError as exc:
        logger.error("rejected request not logged: %s", exc, extra=extra)
        return _body(503, str(exc), request_id)
    if status >= 500:
        logger.error("request failed", extra=extra)
    else:
        logger.info("request rejected", extra=extra)
    return _body(status, detail, request_id)


def count_failures(request: Request, details: list[dict[str, Any]]) -> None:
    """Count rejected values by field and rule (``housing_validation_failures_total``)."""
    counter = request.app.state.metrics.validation_failures
    for item in details:
        field = item["field"].rsplit(".", 1)[-1]
        counter.labels(field=field if field in KNOWN_FIELDS else "other", rule=item["rule"]).inc()


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each failing field and rule."""
    details = [describe(error) for error in exc.errors()]
    count_failures(request, details)
    body = exc.body
    inputs, raw = (
        (None, prediction_log.raw_text(body)) if isinstance(body, str | bytes) else (body, None)
    )
    return await log_and_respond(request, 422, details, inputs=inputs, raw_body=raw)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette/FastAPI HTTP errors (404, 405, 413, 401, ...) as ``{"detail": "..."}``."""
    detail = exc.detail
    if exc.status_code == 413:
        limit = request.app.state.settings.max_body_bytes
        detail = f"the request body is larger than {limit} bytes (HOUSING_MAX_BODY_BYTES)"
    response = await log_and_respond(request, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def rate_limited(request: Request, limit: str, retry_after: int) -> JSONResponse:
    """429 for a client over HOUSING_RATE_LIMIT (the body, if readable, is logged)."""
    try:
        raw = await request.body()
    except Exception:  # e.g. over the size limit: the row says so without the body
        raw = None
    inputs, text = _parse(raw)
    detail = f"rate limit exceeded ({limit} per client); retry in {retry_after} s"
    response = await log_and_respond(request, 429, detail, inputs=inputs, raw_body=text)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _parse(raw: bytes | None) -> tuple[Any, str | None]:
    import orjson

    if not raw:
        return None, None
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        return None, prediction_log.raw_text(raw)


async def log_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503: the request could not be logged, so it is not acknowledged."""
    return _body(503, str(exc))


async def log_read_timeout(request: Request, exc: Exception) -> JSONResponse:
    """503: a read of the log ran past HOUSING_LOG_READ_TIMEOUT_SECONDS and was stopped."""
    return _body(503, str(exc))


async def model_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503: no model loaded yet (the row is logged already)."""
    return _body(503, str(exc))


async def prediction_failed(request: Request, exc: Exception) -> JSONResponse:
    """500: the model failed (the row is logged already)."""
    return _body(500, str(exc))


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """500 for anything unforeseen: logged with its traceback server-side, never sent."""
    logger.error("unhandled error on %s", request.scope.get("path"), exc_info=exc)
    return await log_and_respond(
        request, 500, "internal error (logged on the server)", error=type(exc).__name__
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler above."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(LogUnavailableError, log_unavailable)
    app.add_exception_handler(ModelUnavailableError, model_unavailable)
    app.add_exception_handler(prediction_log.LogReadTimeoutError, log_read_timeout)
    app.add_exception_handler(PredictionFailedError, prediction_failed)
    app.add_exception_handler(Exception, unexpected_error)
