"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it costs a task and a queue per request).

- ``RequestMetrics``: counts requests by route template and status, and their latency.
- ``BodyLimit``: answers 413 for a body over the limit, by ``Content-Length`` before the app
  runs, and by the bytes actually received for chunked bodies (no ``Content-Length``; the
  HTTP server itself never delivers more bytes than a ``Content-Length`` announces).
"""

from __future__ import annotations

import contextlib
import time

import orjson
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.metrics import ServiceMetrics

UNMATCHED = "<unmatched>"


class RequestMetrics:
    """Observe every HTTP request in ``metrics`` under its route template (``/models/{name}``)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(
                route_template(scope), scope["method"], status, time.perf_counter() - start
            )


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope`` (``/models/{name}``), or
    ``UNMATCHED``: unmatched paths share one label so scanners cannot blow up the series."""
    route = scope.get("route")
    if route is None:
        # FastAPI sets scope["route"] for its APIRoutes only; plain Starlette routes, such as
        # FastAPI's own /openapi.json, are found again among the app's routes.
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            if isinstance(candidate, Route) and candidate.matches(scope)[0] is Match.FULL:
                route = candidate
                break
    return getattr(route, "path", UNMATCHED) if route is not None else UNMATCHED


class _BodyTooLarge(Exception):
    """Raised from ``receive`` once more bytes than the limit have arrived."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 in the service's error envelope."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._reject(send, f"Content-Length {length}")
            return
        if length is not None:  # the server never reads past Content-Length: nothing to watch
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app's answer to the aborted read (e.g. a 400) is replaced
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # the app stopped reading: answer below
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await self._reject(send, f"{received} bytes received so far")

    async def _reject(self, send: Send, what: str) -> None:
        error = PayloadTooLarge(
            f"request body too large: {what}, the limit is {self.max_bytes} bytes",
            expected=f"a body of at most {self.max_bytes} bytes (DIGITS_MAX_BODY_BYTES)",
        )
        body = orjson.dumps(error.body())
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
