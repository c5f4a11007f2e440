"""Run the API under uvicorn (uvloop + httptools), as `housing serve` does."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

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
    own_port = settings.metrics_port is not None
    if (workers > 1 or own_port) and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker is a process: Prometheus' multiprocess mode sums them on every scrape
        # (and the metrics port's server reads them from outside the app).
        created = tempfile.mkdtemp(prefix="housing-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    return created


def http_protocol() -> str:
    """httptools with the head cap where httptools is installed (not on Windows), else h11
    (which caps heads itself)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "housing.service.httpcap:HeadCappedHttpToolsProtocol"


def limits(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's connection, head-size and proxy settings from the service's.

    ``X-Forwarded-For`` is trusted from ``HOUSING_FORWARDED_ALLOW_IPS`` only: uvicorn's own
    default trusts loopback, so any local client (or a sidecar) could choose the address the
    rate limit counts with a random header."""
    trusted = settings.forwarded_allow_ips.strip()
    return {
        "limit_concurrency": settings.limit_concurrency,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
    }


def serve_metrics(settings: ServiceSettings, host: str) -> None:
    """``/metrics`` on ``HOUSING_METRICS_PORT`` (prometheus-client's server, in this process,
    summing every worker's files in ``PROMETHEUS_MULTIPROC_DIR``)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(settings.metrics_port, addr=host, registry=registry)


def run(settings: ServiceSettings, host: str, port: int, workers: int) -> None:
    """Serve until interrupted (SIGINT/SIGTERM finish in-flight requests first)."""
    import uvicorn

    from housing.service.jsonlog import logging_config

    created = prepare(settings, workers)
    if settings.metrics_port is not None:
        serve_metrics(settings, host)
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # "auto" takes uvloop where it is installed (not on Windows).
            loop="auto",
            http=http_protocol(),
            log_config=logging_config(settings.log_level),
            access_log=False,
            timeout_graceful_shutdown=settings.graceful_timeout_seconds,
            **limits(settings),
        )
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
