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
        client = scope.get("client")
        key = client[0] if client else "unknown"
        for item in self.items:
            if not self.limiter.hit(item, key):
                reset = self.limiter.get_window_stats(item, key).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                response = await rate_limited(Request(scope, receive), str(item), retry)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_rate_limit(app: FastAPI, limit: str, prefix: str = "") -> None:
    """Limit every route (under ``prefix``) but probes and docs to ``limit`` per client address
    ("" = none); each call adds a limiter of its own, so a prefix gets a limit beside the global."""
    if limit:
        app.add_middleware(RateLimitMiddleware, limit=limit, prefix=prefix)
