"""Why this value: Shapley contributions of one house, and what-if curves over one input."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request, Response

from api.deps import RuntimeDep, started
from api.errors import ERROR_RESPONSES
from housing.explain import GROUPS, METHOD, PLAYER_OF
from housing.explain import Explanation as Shapley
from housing.features import FEATURE_NAMES, TARGET_DOLLARS
from housing.service.batcher import ModelUnavailableError, PredictionFailedError
from housing.service.explain import ExplainPool
from housing.service.explain_schemas import (
    Contribution,
    Explanation,
    Refusal,
    WhatIf,
    WhatIfPoint,
    WhatIfRequest,
)
from housing.service.log import EXPLAIN, new_id, new_row
from housing.service.model import LoadedModel
from housing.service.schemas import House, ValidationErrorBody
from housing.whatif import curve, grid

router = APIRouter(prefix="/explain", tags=["explain"])
RESPONSES = {422: {"model": ValidationErrorBody}, **ERROR_RESPONSES}


def explain_pool(app: FastAPI) -> ExplainPool:
    """The app's explain thread, started on first use (closed by ``close_explain_pool``)."""
    pool = getattr(app.state, "explain_pool", None)
    if pool is None:
        pool = app.state.explain_pool = ExplainPool(app.state.settings.model_threads)
    return pool


async def close_explain_pool(app: FastAPI) -> None:
    """A lifespan task: close the explain thread on shutdown."""
    try:
        await asyncio.Event().wait()
    finally:
        pool = getattr(app.state, "explain_pool", None)
        if pool is not None:
            pool.close()


def _contributions(result: Shapley, values: dict[str, float]) -> list[Contribution]:
    items = [
        Contribution(
            feature=player,
            inputs=list(GROUPS[player]),
            value=values[GROUPS[player][0]] if len(GROUPS[player]) == 1 else None,
            values={name: values[name] for name in GROUPS[player]},
            contribution=phi,
            contribution_dollars=phi * TARGET_DOLLARS,
        )
        for player, phi in result.contributions.items()
    ]
    return sorted(items, key=lambda item: -abs(item.contribution))


async def _serving(request: Request, runtime: Any, row: dict[str, Any]) -> LoadedModel:
    """The model of this moment, if it can explain; otherwise log the 503 and raise it."""
    model = runtime.holder.current
    reason = None
    if model is None:
        reason = "no model loaded yet; try again shortly"
    elif model.explain is None or model.explain.explainer is None:
        reason = model.explain.missing if model.explain else "no explainer for this version"
    if reason is not None:
        row.update(status=503, error=reason)
        await runtime.batcher.record(row, started(request))
        raise ModelUnavailableError(reason)
    return model


@router.post("", response_model=Explanation, responses=RESPONSES)
async def explain(
    house: House,  # type: ignore[valid-type]
    request: Request,
    response: Response,
    runtime: RuntimeDep,
) -> Explanation:
    """Shapley contributions of the 7 players to this house's prediction (logged)."""
    request_id = new_id()
    values = house.__dict__
    row = new_row(EXPLAIN, request_id, status=200, inputs=values)
    model = await _serving(request, runtime, row)
    explainer = model.explain.explainer  # type: ignore[union-attr]
    features = [values[name] for name in FEATURE_NAMES]
    row.update(model_name=model.name, model_version=model.version)
    predict = model.predict
    if runtime.settings.explain_predict == "pipeline" and model.compiled is not None:
        predict = replace(model, compiled=None).predict  # the pipeline, checked against it
    try:
        result = await explain_pool(request.app).run(explainer.explain, predict, features)
        if not np.isfinite([result.prediction, *result.contributions.values()]).all():
            raise ValueError("non-finite explanation")
    except Exception as exc:
        row.update(status=500, error=f"explanation failed: {type(exc).__name__}")
        await runtime.batcher.record(row, started(request))
        raise PredictionFailedError("the model failed on this input") from None
    row.update(
        prediction=result.prediction,
        contributions={"base_value": result.base_value, **result.contributions},
    )
    await runtime.batcher.record(row, started(request))
    response.headers["X-Request-ID"] = request_id
    return Explanation(
        explanation_id=request_id,
        prediction=result.prediction,
        prediction_dollars=result.prediction * TARGET_DOLLARS,
        base_value=result.base_value,
        base_value_dollars=result.base_value * TARGET_DOLLARS,
        contributions=_contributions(result, values),
        model_name=model.name,
        model_version=model.version,
        method=METHOD,
        background_rows=len(explainer.background),
    )


@router.post("/what-if", response_model=WhatIf, responses=RESPONSES)
async def what_if(body: WhatIfRequest, request: Request, runtime: RuntimeDep) -> WhatIf:
    """The house's predicted value across one input's range; rule-breaking points refused."""
    model = runtime.holder.current
    if model is None:
        raise ModelUnavailableError("no model loaded yet; try again shortly")
    house = body.house.__dict__
    values = grid(body.feature, body.points, body.low, body.high)
    current = np.array([[house[name] for name in FEATURE_NAMES]])

    def run() -> tuple[list, float]:
        points = curve(model.predict, house, body.feature, values)
        now = float(model.predict(current)[0])
        predicted = [p.prediction for p in points if p.prediction is not None]
        if not np.isfinite([now, *predicted]).all():
            raise ValueError("non-finite prediction")
        return points, now

    try:
        points, now = await explain_pool(request.app).run(run)
    except Exception:
        raise PredictionFailedError("the model failed on this input") from None
    return WhatIf(
        feature=body.feature,
        player=PLAYER_OF[body.feature],
        current_value=house[body.feature],
        current_prediction=now,
        low=float(values[0]),
        high=float(values[-1]),
        points=[_point(p) for p in points],
        refused=sum(p.rule is not None for p in points),
        model_name=model.name,
        model_version=model.version,
    )


def _point(point: Any) -> WhatIfPoint:
    if point.rule is not None:
        refusal = Refusal(rule=point.rule.name, field=point.rule.field, message=point.message)
        return WhatIfPoint(value=point.value, refused=refusal)
    return WhatIfPoint(
        value=point.value,
        prediction=point.prediction,
        prediction_dollars=point.prediction * TARGET_DOLLARS,
    )
