"""Typed dependencies, so route signatures read like prose.

The functions are ``async``: FastAPI would run plain functions in a thread pool, which costs
more than they do.
"""

from __future__ import annotations

import secrets
from time import perf_counter
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from housing.service.runtime import Runtime
from housing.service.settings import ServiceSettings

STARTED = "housing.started"
"""ASGI scope key: ``perf_counter()`` when the service middleware saw the request."""

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_runtime(request: Request) -> Runtime:
    """The running service (started by the lifespan)."""
    return request.app.state.runtime


async def get_settings(request: Request) -> ServiceSettings:
    """The app's settings: ``get_service_settings()`` unless ``create_app`` was given others.

    Tests choose settings through ``create_app(settings)`` rather than
    ``app.dependency_overrides``: with any override set, FastAPI re-analyses every dependency
    of every request (about 0.1 ms each), which the benchmark would pay too.
    """
    return request.app.state.settings


def started(request: Request) -> float:
    """When the request arrived (for the logged latency)."""
    return request.scope.get(STARTED) or perf_counter()


def key_matches(key: str | None, allowed: list[SecretStr]) -> bool:
    """Whether ``key`` is one of ``allowed`` (each compared in constant time)."""
    if key is None:
        return False
    given = key.encode()
    found = False
    for secret in allowed:
        found |= secrets.compare_digest(given, secret.get_secret_value().encode())
    return found


async def require_admin(
    settings: Annotated[ServiceSettings, Depends(get_settings)],
    key: Annotated[str | None, Security(api_key_header)],
) -> None:
    """Admin endpoints need ``X-API-Key``; with no key configured they refuse everyone."""
    if settings.api_key is None:
        raise HTTPException(403, "admin endpoints are disabled: set HOUSING_API_KEY")
    if not key_matches(key, [settings.api_key]):
        raise HTTPException(401, "missing or wrong X-API-Key header")


async def require_reader(
    settings: Annotated[ServiceSettings, Depends(get_settings)],
    key: Annotated[str | None, Security(api_key_header)],
) -> None:
    """The log's contents (houses, labels, reports) need ``X-API-Key``: a read key or the
    admin key; with neither configured they are refused to everyone."""
    allowed = [*settings.read_keys, *([settings.api_key] if settings.api_key else [])]
    if not allowed:
        raise HTTPException(403, "reading the log is disabled: set HOUSING_READ_KEYS")
    if not key_matches(key, allowed):
        raise HTTPException(401, "missing or wrong X-API-Key header (a read or admin key)")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
AdminDep = Annotated[None, Depends(require_admin)]
ReaderDep = Annotated[None, Depends(require_reader)]
