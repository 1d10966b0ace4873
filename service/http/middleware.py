"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it costs a task and a queue per request).

- ``RequestMetrics``: gives each request its id (``X-Request-Id``), counts requests by route
  template and status, and their latency, and writes each request's access line
  (service/http/request_log.py).
- ``BodyLimit``: answers 413 for a body over the limit, by ``Content-Length`` before the app
  runs, and by the bytes actually received for chunked bodies (no ``Content-Length``; the
  HTTP server itself never delivers more bytes than a ``Content-Length`` announces); and 408
  for a body that stops arriving (a slow-loris client holding a connection and a task).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InvalidInput, PayloadTooLarge, RequestTimeout, ServiceError
from service.http.numbers import parse_int
from service.http.request_log import REQUEST_ID, request_id, with_request_id, write_access
from service.metrics import ServiceMetrics

UNMATCHED = "<unmatched>"


class RequestMetrics:
    """Observe every HTTP request in ``metrics`` under its route template (``/models/{name}``)
    and in its access line, and give it its id: in the scope (``REQUEST_ID``), for the layers
    inside, and in the answer's ``X-Request-Id``."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        scope[REQUEST_ID] = rid = request_id(scope["headers"])
        header = (b"x-request-id", rid.encode())
        status = 500  # unless the app answers: what ServerErrorMiddleware (outside) sends

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe_request(route_template(scope), scope["method"], status, seconds)
            write_access(scope, status, seconds)


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


class _BodyRefused(Exception):
    """Raised from ``receive`` when the body is over the limit or stopped arriving."""

    def __init__(self, error: ServiceError) -> None:
        self.error = error


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413) and bodies that stop arriving for
    ``read_timeout_s`` (408), in the service's error envelope, closing the connection."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            error = _too_large(f"Content-Length {length}", self.max_bytes)
            await self._refuse(scope, send, error)
            return
        if length == 0 or (length is None and not _chunked(scope)):
            await self.app(scope, receive, send)  # no body: nothing to limit or wait for
            return
        guard = _BodyGuard(receive, send, self.max_bytes, self.read_timeout_s)
        with contextlib.suppress(_BodyRefused):  # the app stopped reading: answer below
            await self.app(scope, guard.receive, guard.send)
        if guard.refused is not None and not guard.started:
            await self._refuse(scope, send, guard.refused)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, error: ServiceError) -> None:
        error.headers = {**(error.headers or {}), "Connection": "close"}
        await send_error(scope, send, error)


class _BodyGuard:
    """One request's body as it arrives: each ``receive`` under the read timeout, the bytes
    counted against the limit; once refused, the app's own answer is dropped."""

    __slots__ = (
        "_receive", "_send", "complete", "max_bytes", "read_timeout_s", "received", "refused",
        "started",
    )  # fmt: skip

    def __init__(self, receive: Receive, send: Send, max_bytes: int, read_timeout_s: float):
        self._receive, self._send = receive, send
        self.max_bytes, self.read_timeout_s = max_bytes, read_timeout_s
        self.received = 0
        self.complete = False
        self.refused: ServiceError | None = None
        self.started = False

    def _expire(self, task: asyncio.Task[object]) -> None:
        self.refused = RequestTimeout(
            f"the request body stopped arriving: nothing for {self.read_timeout_s:g} s "
            f"after {self.received} bytes",
            expected="the whole body without pauses (DIGITS_BODY_READ_TIMEOUT_S)",
        )
        task.cancel()

    async def receive(self) -> Message:
        if self.complete:  # the body is in: what follows is a disconnect, whenever it comes
            return await self._receive()
        task = asyncio.current_task()
        assert task is not None
        # A plain timer, not asyncio.timeout: this runs on every request with a body.
        timer = asyncio.get_running_loop().call_later(self.read_timeout_s, self._expire, task)
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if self.refused is None:
                raise
            task.uncancel()
            raise _BodyRefused(self.refused) from None
        finally:
            timer.cancel()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.max_bytes:  # chunked: no Content-Length announced it
                self.refused = _too_large(f"{self.received} bytes received so far", self.max_bytes)
                raise _BodyRefused(self.refused)
        return message

    async def send(self, message: Message) -> None:
        if self.refused is not None:  # the app's answer to the aborted read is replaced
            return
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


def _too_large(what: str, max_bytes: int) -> ServiceError:
    return PayloadTooLarge(
        f"request body too large: {what}, the limit is {max_bytes} bytes",
        expected=f"a body of at most {max_bytes} bytes (DIGITS_MAX_BODY_BYTES)",
    )


def _chunked(scope: Scope) -> bool:
    return any(key == b"transfer-encoding" for key, _value in scope["headers"])


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return parse_int(value, "Content-Length", minimum=0)
            except InvalidInput:
                return None
    return None


async def send_error(scope: Scope, send: Send, error: ServiceError) -> None:
    """Answer ``error`` in the service's JSON envelope, straight from a middleware."""
    body = orjson.dumps(with_request_id(error.body(), scope))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
