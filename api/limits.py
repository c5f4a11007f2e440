"""Per-client rate limiting: the ``limits`` library (slowapi's engine) in a pure ASGI middleware.

slowapi's own ``SlowAPIASGIMiddleware`` cannot be used with this FastAPI: it looks for the
endpoint among ``app.routes``, but FastAPI 0.16x keeps included routers nested there, so it
finds no handler and exempts every request. Checking before the body is parsed also means a
client over its limit costs almost nothing (about 2 µs per request for the check).
"""

from __future__ import annotations

import math
import time

from fastapi import FastAPI
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import rate_limited

UNLIMITED = frozenset({"/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json"})
"""Probes, scrapes and docs are never limited."""


class RateLimitMiddleware:
    """Answer 429 (through the app's handler, so the request is logged) past ``limit``."""

    def __init__(self, app: ASGIApp, limit: str, prefix: str = "") -> None:
        self.app = app
        self.prefix = prefix
        self.items: list[RateLimitItem] = parse_many(limit)
        self.limiter = FixedWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in UNLIMITED or not path.startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        key = client_key(scope)
        for item in self.items:
            if not self.limiter.hit(item, key):
                reset = self.limiter.get_window_stats(item, key).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                response = await rate_limited(Request(scope, receive), str(item), retry)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def client_key(scope: Scope) -> str:
    """The client's address: the TCP peer's, or what ``X-Forwarded-For`` says when uvicorn was
    told to trust the peer (``HOUSING_FORWARDED_ALLOW_IPS``); a client cannot choose it."""
    client = scope.get("client")
    return client[0] if client else "unknown"


class RowLimit:
    """Houses predicted per client: ``/predict`` costs 1, ``/predict/batch`` its row count.

    The request limit above counts a 1,000-row batch as one request; this one counts what the
    model and the log pay for. Charged once the body is parsed (the row count is known).
    """

    def __init__(self, limit: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        self.limiter = FixedWindowRateLimiter(MemoryStorage())

    def charge(self, scope: Scope, rows: int) -> tuple[str, int] | None:
        """Count ``rows`` for the client; over a limit: (that limit, seconds to wait)."""
        key = client_key(scope)
        for item in self.items:
            if not self.limiter.hit(item, key, cost=rows):
                reset = self.limiter.get_window_stats(item, key).reset_time
                return f"houses: {item}", max(1, math.ceil(reset - time.time()))
        return None


async def charge_rows(request: Request, rows: int) -> JSONResponse | None:
    """The 429 answer (logged) when predicting ``rows`` more puts the client over its limit."""
    row_limit: RowLimit | None = getattr(request.app.state, "row_limit", None)
    over = row_limit.charge(request.scope, rows) if row_limit is not None else None
    if over is None:
        return None
    return await rate_limited(request, *over)


def install_rate_limit(app: FastAPI, limit: str, row_limit: str = "", prefix: str = "") -> None:
    """Limit every route (under ``prefix``) but probes and docs to ``limit`` requests per client
    address, and the houses predicted to ``row_limit`` ("" = none; so is either when ``limit``
    is ""); each call adds a limiter of its own, so a prefix gets a limit beside the global."""
    if not prefix:
        app.state.row_limit = RowLimit(row_limit) if limit and row_limit else None
    if limit:
        app.add_middleware(RateLimitMiddleware, limit=limit, prefix=prefix)
