"""``PlotQueue``: curve plots drawn one at a time in their own thread, with a bounded queue.

A plot takes a fraction of a second of CPU in matplotlib, so a burst of requests would wait
behind each other without end (64 clients for 20 s left a new plot waiting 91 s). Here at
most ``max_waiting`` requests wait or draw; one more is refused at once (``Overloaded``, 429
with ``Retry-After``: the queue's length times the last drawing's seconds). A request whose
client has gone by its turn is not drawn. The drawing thread is never the default executor
that database calls go through, so plots never delay job calls.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from service.errors import Overloaded


class Disconnectable(Protocol):
    """What the queue asks of a request (Starlette's ``Request``)."""

    async def is_disconnected(self) -> bool: ...


class PlotQueue:
    """One drawing thread and at most ``max_waiting`` requests waiting for it or drawing."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self.waiting = 0
        #: Requests whose client had gone by their turn: not drawn.
        self.abandoned = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plot")
        self._turn = asyncio.Lock()  # FIFO: one drawing handed to the thread at a time
        self._last_s = 0.5

    def close(self) -> None:
        """Stop the drawing thread (after the drawing under way)."""
        self._executor.shutdown(wait=True)

    def retry_after_s(self) -> int:
        """Seconds until the queue has room, from the last drawing's time (at least 1)."""
        return max(1, math.ceil(self.waiting * self._last_s))

    async def draw(self, request: Disconnectable, draw: Callable[[], bytes]) -> bytes | None:
        """``draw()`` in the drawing thread when its turn comes; ``None`` when the client has
        gone by then; ``Overloaded`` when ``max_waiting`` requests are already queued."""
        if self.waiting >= self.max_waiting:
            raise Overloaded(
                f"{self.waiting} plots are already waiting to be drawn",
                expected=f"retry after {self.retry_after_s()} s; or read curve.json",
                headers={"Retry-After": str(self.retry_after_s())},
            )
        self.waiting += 1
        try:
            async with self._turn:
                if await request.is_disconnected():
                    self.abandoned += 1
                    return None
                start = time.perf_counter()
                body = await asyncio.get_running_loop().run_in_executor(self._executor, draw)
                self._last_s = time.perf_counter() - start
                return body
        finally:
            self.waiting -= 1
