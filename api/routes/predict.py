"""Predictions: one house, or a batch with a result or an error per row."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.deps import RuntimeDep, started
from api.errors import ERROR_RESPONSES, count_failures
from api.limits import charge_rows
from housing.features import FEATURE_NAMES, TARGET_DOLLARS
from housing.service.bounds import bounded_errors
from housing.service.batcher import Served
from housing.service.log import BATCH, PREDICT, new_id, new_row
from housing.service.rules import describe
from housing.service.schemas import (
    BatchItem,
    BatchPrediction,
    BatchRequest,
    House,
    Interval,
    Prediction,
    ValidationErrorBody,
)
from housing.service.tokens import new_token

router = APIRouter(tags=["predict"])
RESPONSES = {422: {"model": ValidationErrorBody}, **ERROR_RESPONSES}
N_FEATURES = len(FEATURE_NAMES)


@router.post("/predict", response_model=Prediction, responses=RESPONSES)
async def predict(
    house: House,  # type: ignore[valid-type]
    request: Request,
    response: Response,
    runtime: RuntimeDep,
) -> Prediction | JSONResponse:
    """Predict one house's median value; answered once the request is in the log."""
    refused = await charge_rows(request, 1)
    if refused is not None:
        return refused
    request_id = new_id()
    values = house.__dict__
    features = np.array([[values[name] for name in FEATURE_NAMES]])
    token, token_sha256 = new_token()
    row = new_row(
        PREDICT, request_id, status=200, inputs=values, feedback_token_sha256=token_sha256
    )
    served = await runtime.batcher.predict(row, started(request), features)
    value = float(served.values[0])
    response.headers["X-Request-ID"] = request_id
    return Prediction(
        prediction_id=request_id,
        feedback_token=token,
        prediction=value,
        prediction_dollars=value * TARGET_DOLLARS,
        model_name=served.model.name,
        model_version=served.model.version,
        interval=_interval(served, 0),
    )


def _interval(served: Served, index: int) -> Interval | None:
    """The interval of the ``index``-th served value, if the model has intervals."""
    if served.bounds is None or served.model is None or served.model.intervals is None:
        return None
    low, high = float(served.bounds[0][index]), float(served.bounds[1][index])
    return Interval(
        level=served.model.intervals.level,
        low=low,
        high=high,
        low_dollars=low * TARGET_DOLLARS,
        high_dollars=high * TARGET_DOLLARS,
    )


@router.post("/predict/batch", response_model=BatchPrediction, responses=RESPONSES)
async def predict_batch(
    body: BatchRequest, request: Request, response: Response, runtime: RuntimeDep
) -> BatchPrediction | JSONResponse:
    """Predict up to 1,000 houses; each row gets a prediction or the reasons it was rejected.
    The batch costs its row count in the client's HOUSING_ROW_RATE_LIMIT."""
    refused = await charge_rows(request, len(body.houses))
    if refused is not None:
        return refused
    request_id = new_id()
    rows: list[list[float]] = []
    positions: list[int] = []
    rejected: dict[int, list[dict]] = {}
    logged: list[dict | None] = []  # what the log keeps: the houses predicted, not the junk
    for index, raw in enumerate(body.houses):
        try:
            values = House.model_validate(raw).__dict__
        except ValidationError as exc:
            rejected[index] = [describe(error) for error in exc.errors()]
            count_failures(request, rejected[index])
            logged.append(None)
            continue
        rows.append([values[name] for name in FEATURE_NAMES])
        positions.append(index)
        logged.append(values)
    errors = [{"index": i, "errors": e} for i, e in rejected.items()] or None
    token, token_sha256 = new_token()
    row = new_row(
        BATCH,
        request_id,
        status=200,
        inputs=logged,
        error=bounded_errors(errors),
        feedback_token_sha256=token_sha256,
    )
    features = np.array(rows, dtype=np.float64).reshape(-1, N_FEATURES)
    served = await runtime.batcher.predict(
        row, started(request), features, positions, len(body.houses)
    )
    results = [BatchItem(index=i, errors=e) for i, e in rejected.items()]
    for k, (position, value) in enumerate(zip(positions, served.values.tolist(), strict=True)):
        results.append(
            BatchItem(
                index=position,
                prediction_id=f"{request_id}-{position}",
                prediction=value,
                prediction_dollars=value * TARGET_DOLLARS,
                interval=_interval(served, k),
            )
        )
    results.sort(key=lambda item: item.index)
    response.headers["X-Request-ID"] = request_id
    return BatchPrediction(
        request_id=request_id,
        feedback_token=token,
        model_name=served.model.name,
        model_version=served.model.version,
        predicted=len(positions),
        rejected=len(rejected),
        results=results,
    )
