"""The model serving, and the training runs behind it."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import RuntimeDep
from housing.features import FEATURE_NAMES
from housing.service.explain import load_importances
from housing.service.runs import training_overview
from housing.service.schemas import ErrorBody, FeatureImportance, ModelInfo, ModelsOverview

router = APIRouter(tags=["models"])


@router.get("/model", response_model=ModelInfo, responses={503: {"model": ErrorBody}})
async def model(runtime: RuntimeDep) -> ModelInfo:
    """The serving model: name, version, run, test metrics, trained-at, features."""
    current = runtime.holder.current
    if current is None:
        raise HTTPException(503, runtime.holder.last_error or "no model loaded yet")
    return ModelInfo(
        name=current.name,
        version=current.version,
        alias=current.alias,
        run_id=current.run_id,
        candidate=current.candidate,
        metrics=current.metrics,
        trained_at=current.trained_at,
        loaded_at=current.loaded_at,
        features=list(FEATURE_NAMES),
    )


@router.get("/models", response_model=ModelsOverview, responses={503: {"model": ErrorBody}})
def models(runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> ModelsOverview:
    """Training runs newest first, candidates side by side; which versions are champion/previous."""
    settings = runtime.settings
    client = runtime.holder.client()
    try:
        overview = training_overview(client, settings.experiment_name, settings.model_name, limit)
    except Exception as exc:
        raise HTTPException(503, f"MLflow tracking store unavailable: {exc}"[:300]) from None
    if overview.champion is not None and overview.champion.run_id:
        uri = settings.mlflow_tracking_uri
        with contextlib.suppress(Exception):  # an older run without importances: null
            importances = load_importances(client, uri, overview.champion.run_id)
            overview.champion_importances = [FeatureImportance(**row) for row in importances]
    return overview
