"""Feedback: the observed value for an earlier prediction (for live accuracy)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import RuntimeDep, started
from api.errors import ERROR_RESPONSES, log_and_respond
from api.labels import LabelSourceDep
from housing.service import log as prediction_log
from housing.service.schemas import ErrorBody, Feedback, FeedbackRequest, ValidationErrorBody
from housing.service.tokens import token_matches

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    response_model=Feedback,
    responses={
        401: {"model": ErrorBody, "description": "Wrong X-Labeller-Key"},
        403: {"model": ErrorBody, "description": "No or not this prediction's feedback_token"},
        404: {"model": ErrorBody, "description": "No successful prediction has this id"},
        409: {"model": ErrorBody, "description": "Feedback for this prediction exists already"},
        422: {"model": ValidationErrorBody},
        **ERROR_RESPONSES,
    },
)
async def feedback(
    body: FeedbackRequest,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    source: LabelSourceDep,
) -> Feedback | JSONResponse:
    """Record the true value of a prediction; answered once the feedback is in the log.

    With ``X-Labeller-Key`` (a labeller key or the admin key) the label may train a model;
    without it, it only measures live accuracy.

    One per prediction: the check below answers most repeats, the log's unique
    ``feedback_key`` the concurrent ones (``write_rows`` turns the loser into its 409 row).
    """
    engine = runtime.engine
    inputs = body.model_dump(exclude={"feedback_token"})  # a secret: never logged
    if body.feedback_token is None:
        detail = "feedback_token is required: quote the one /predict answered with"
        return await log_and_respond(request, 403, detail, inputs=inputs)
    found = await run_in_threadpool(prediction_log.find_prediction, engine, body.prediction_id)
    if found is None:
        detail = f"no successful prediction has id {body.prediction_id!r}"
        return await log_and_respond(request, 404, detail, inputs=inputs)
    if not token_matches(body.feedback_token, found.token_sha256):
        detail = f"feedback_token is not the one prediction {body.prediction_id!r} was given"
        return await log_and_respond(request, 403, detail, inputs=inputs)
    if await run_in_threadpool(prediction_log.feedback_exists, engine, body.prediction_id):
        detail = prediction_log.feedback_taken(body.prediction_id)
        return await log_and_respond(request, 409, detail, inputs=inputs)
    feedback_id = prediction_log.new_id()
    row = prediction_log.new_row(
        prediction_log.FEEDBACK,
        feedback_id,
        status=200,
        inputs=inputs,
        feedback_for=body.prediction_id,
        feedback_key=body.prediction_id,
        actual=body.actual,
        prediction=found.value,
        predicted_at=found.created_at,
        model_version=found.model_version,
        label_source=source,
    )
    await runtime.batcher.record(row, started(request))
    if row["status"] == 409:  # a concurrent feedback for it committed first; this row says so
        return JSONResponse(
            {"detail": row["error"]}, status_code=409, headers={"X-Request-ID": feedback_id}
        )
    response.headers["X-Request-ID"] = feedback_id
    return Feedback(
        feedback_id=feedback_id,
        prediction_id=body.prediction_id,
        prediction=found.value,
        actual=body.actual,
        model_version=found.model_version,
    )
