"""The current request's deadline, as a context variable: set by the HTTP layer's
``RequestDeadline`` middleware (``service/http/deadlines.py``), read by ``DataPlane.infer``
when it queues rows. A context variable, not an argument: the request's task, and only it,
sees its own deadline."""

from __future__ import annotations

from contextvars import ContextVar

#: The current request's deadline in event-loop time (``loop.time()``); None: no deadline.
REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("request_deadline", default=None)
