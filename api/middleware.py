"""Per-request instrumentation and body-size limit as one pure ASGI middleware.

A ``BaseHTTPMiddleware`` would wrap every request in extra tasks and streams; this one only
wraps ``send`` (to see the status code) and ``receive`` (to count body bytes). The size limit is
hand-written because Starlette's own ``max_body_size`` answers a too-large Content-Length in
plain text, replacing the JSON error and bypassing the prediction log; raising
``HTTPException(413)`` from ``receive`` lets the app's handlers answer and log it like any error.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import STARTED
from housing.service.metrics import ServiceMetrics

UNMATCHED = "unmatched"
"""``endpoint`` label of requests no route matched (keeps the label set small)."""


class ServiceMiddleware:
    """Counts requests by route and status, times them, tracks requests in flight, and
    refuses bodies over ``max_body_bytes`` (by Content-Length, and by bytes received)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = scope[STARTED] = perf_counter()
        status = 500  # what the server sends if the app raises before responding

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        limit = self.max_body_bytes
        declared = _content_length(scope)
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise HTTPException(413)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413)
            return message

        in_flight = self.metrics.in_flight
        in_flight.inc()
        try:
            await self.app(scope, receive_limited, send_status)
        finally:
            in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", UNMATCHED) if route is not None else UNMATCHED
            counter, histogram = self._instruments(endpoint, status)
            counter.inc()
            histogram.observe(perf_counter() - started)

    def _instruments(self, endpoint: str, status: int) -> tuple[Any, Any]:
        """The labelled children, cached: ``labels()`` takes a lock and builds a key each time."""
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(endpoint=endpoint, status=str(status)),
                self.metrics.latency.labels(endpoint=endpoint),
            )
            self._children[key] = children
        return children


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
