"""Request deadlines: each request carries one from its arrival, and work still queued when
it passes is not done (the micro-batcher answers 504 ``deadline_exceeded``).

``RequestDeadline`` (pure ASGI middleware, outside the routes, so every protocol's predict
route has it) sets ``REQUEST_DEADLINE`` for the request: arrival + ``DIGITS_REQUEST_TIMEOUT_MS``,
or + ``X-Request-Timeout-Ms`` when a client sends a shorter one. ``DataPlane.infer`` reads it.
The context variable lives in the inference layer (``service/inference/deadline.py``), which
must not import HTTP.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ServiceError
from service.http.middleware import send_error
from service.http.numbers import parse_number
from service.inference.deadline import REQUEST_DEADLINE

HEADER = b"x-request-timeout-ms"


class RequestDeadline:
    """Give each HTTP request its deadline; a malformed ``X-Request-Timeout-Ms`` is a 422."""

    def __init__(self, app: ASGIApp, timeout_ms: float) -> None:
        self.app = app
        self.timeout_ms = timeout_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timeout_ms = self.timeout_ms
        for key, value in scope["headers"]:
            if key == HEADER:
                try:
                    timeout_ms = self._asked(value)
                except ServiceError as error:
                    await send_error(scope, send, error)
                    return
        deadline = None
        if timeout_ms > 0:
            deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        token = REQUEST_DEADLINE.set(deadline)
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_DEADLINE.reset(token)

    def _asked(self, value: bytes) -> float:
        """The timeout a client asked for, capped by the service's own (when it has one)."""
        asked = parse_number(value, "X-Request-Timeout-Ms")
        return min(asked, self.timeout_ms) if self.timeout_ms > 0 else asked
