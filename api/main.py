"""The HTTP shell over ``housing.service``: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_error_handlers
from api.lifespan import lifespan
from api.limits import install_rate_limit
from api.middleware import ServiceMiddleware
from api.routes import admin, feedback, health, metrics, models, predict, predictions, schema
from api.routes import batches, drift, performance, explain, retrain, versions
from housing.service.metrics import build_metrics
from housing.service.settings import ServiceSettings, get_service_settings

ROUTERS = [
    health,
    predict,
    explain,
    feedback,
    predictions,
    schema,
    models,
    metrics,
    admin,
    drift,
    performance,
    retrain,
    batches,
    versions,
]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app; ``settings`` replaces the environment's (tests)."""
    if settings is None:
        settings = get_service_settings()
    app = FastAPI(
        title="California housing",
        summary="Median house value of a California block group, from census features.",
        version="1.0.0",
        lifespan=lifespan,
        **({} if settings.docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}),
    )
    app.state.settings = settings
    app.state.metrics = build_metrics()
    for module in ROUTERS:
        if module is metrics and settings.metrics_port is not None:
            continue  # served on its own port (housing.service.server)
        app.include_router(module.router)
    install_error_handlers(app)
    install_rate_limit(app, settings.rate_limit, settings.row_rate_limit)
    install_rate_limit(app, settings.explain_rate_limit, prefix=explain.router.prefix)
    app.add_middleware(
        ServiceMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "X-Labeller-Key"],
            expose_headers=["X-Request-ID"],
        )
    return app
