"""Run the API under uvicorn (uvloop + httptools), as `housing serve` does."""

from __future__ import annotations

import os
import shutil
import tempfile

from housing.service.settings import ServiceSettings

APP = "api.main:create_app"


def prepare(settings: ServiceSettings, workers: int) -> str | None:
    """Process-wide set-up before any worker starts: threads, metrics dir, log schema.

    Returns the Prometheus multiprocess folder it created (to remove on exit), if any."""
    from housing.service import log

    # Migrate once here, so several workers do not race to create the schema.
    engine = log.create_log_engine(settings.database_url, settings.database_timeout_seconds)
    try:
        log.migrate(engine)
    finally:
        engine.dispose()
    # OpenMP reads this when scikit-learn first loads it (the batcher also caps the calling
    # thread with threadpoolctl, which covers BLAS already loaded by numpy).
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.model_threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(settings.model_threads))
    # MLflow retries an unreachable tracking server 7 times with backoff (about 4 minutes per
    # call): a reload, or GET /models, would hang that long. Give up within seconds instead;
    # the old model keeps serving and the next poll retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    created = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker is a process: Prometheus' multiprocess mode sums them on every scrape.
        created = tempfile.mkdtemp(prefix="housing-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    return created


def run(settings: ServiceSettings, host: str, port: int, workers: int) -> None:
    """Serve until interrupted (SIGINT/SIGTERM finish in-flight requests first)."""
    import uvicorn

    from housing.service.jsonlog import logging_config

    created = prepare(settings, workers)
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # "auto" takes uvloop and httptools where they are installed (not on Windows).
            loop="auto",
            http="auto",
            log_config=logging_config(settings.log_level),
            access_log=False,
            timeout_graceful_shutdown=settings.graceful_timeout_seconds,
        )
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
