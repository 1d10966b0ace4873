"""Micro-batching: concurrent requests to one model version share one forward pass.

Policy (the trade-off between latency and throughput):

- A request that finds the worker idle and nothing queued is dispatched at once: a lone
  client never pays ``max_wait_ms``.
- While a forward is in flight, new requests queue up; when it ends, everything queued (up to
  ``max_batch_size`` rows) goes into the next forward. The in-flight forward is the gathering
  window, so under load batches grow by themselves without any timer.
- Only when several requests are already queued (evidence of concurrent clients) does the
  worker wait up to ``max_wait_ms`` more for the batch to fill. Larger values mean bigger
  batches under heavy load and more latency per request; 0 (the service's default) turns the
  timer off: on CPU the forward or loop turn in progress already gathers what arrives, and a
  timer only idles the core (figures in docs/service.md).
- A request larger than ``max_batch_size`` rows runs alone, in one forward.

Where the forward runs: in ``executor`` (one thread per device), except for batches of at most
``inline_rows`` rows, which run on the event loop itself. Handing a batch to a thread and
waking the loop again costs a few hundred microseconds on a busy core, more than a small CPU
forward of a single row; the data plane measures each model at warm-up and
sets ``inline_rows`` so that an inline forward stays under ``DIGITS_INLINE_FORWARD_MAX_US``.
The default 0 means every forward runs in the executor. Results are split back to the callers
in order.

Load shedding, so a queue never grows without bound and nobody gets an answer too late to use:

- ``max_queued_rows``: a request that would make the rows waiting exceed it is refused at once
  with ``Overloaded`` (429, ``Retry-After``); one that finds the queue empty always gets in.
- A ``deadline`` (event-loop time) per request: one still waiting when it passes gets
  ``DeadlineExceeded`` (504) at that moment, and its rows are never run. Callers that went
  away (a cancelled ``submit``) are skipped the same way. Once taken into a batch, a request
  runs to the end.

``on_batch(rows, forward_s, waits)`` reports each forward: its rows, how long it took and how
long each request in it waited in the queue (the two halves of a request's service time).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from service.errors import DeadlineExceeded, ModelNotReady, Overloaded

log = logging.getLogger(__name__)

Forward = Callable[[np.ndarray], np.ndarray]
BatchObserver = Callable[[int, float, list[float]], None]
#: What the callers of a closed batcher get: a fresh error each (never one shared instance).
Closed = Callable[[], ModelNotReady]
#: ``Retry-After`` of a request refused because the queue is full.
OVERLOAD_RETRY_AFTER_S = 1


@dataclass(slots=True)
class _Pending:
    rows: np.ndarray  # (n, 64) float32
    future: asyncio.Future[np.ndarray]
    queued_at: float  # event-loop time
    timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    """Gathers ``submit`` calls into forwards of at most ``max_batch_size`` rows."""

    def __init__(
        self,
        forward: Forward,
        executor: Executor,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queued_rows: int | None = None,
        on_batch: BatchObserver | None = None,
        inline_rows: int = 0,
    ) -> None:
        self.forward = forward
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.max_queued_rows = max_queued_rows
        self.on_batch = on_batch
        self.inline_rows = inline_rows
        """Batches of at most this many rows run on the event loop (0: none)."""
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closed: Closed | None = None  # what callers get once closed

    async def submit(self, rows: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """Probabilities (n, 10) for ``rows`` (n, 64), computed in some batch; ``deadline``:
        the event-loop time after which the rows are no longer worth running."""
        if self._closed is not None:
            raise self._closed()
        limit = self.max_queued_rows
        if limit is not None and self._queue and self._queued_rows + len(rows) > limit:
            raise Overloaded(
                f"{self._queued_rows} rows are already waiting for this model; the queue "
                f"holds at most {limit}",
                expected=f"retry after {OVERLOAD_RETRY_AFTER_S} s (DIGITS_MAX_QUEUED_ROWS)",
                headers={"Retry-After": str(OVERLOAD_RETRY_AFTER_S)},
            )
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="micro-batcher")
        loop = asyncio.get_running_loop()
        pending = _Pending(rows, loop.create_future(), loop.time())
        if deadline is not None:
            if deadline <= pending.queued_at:
                _expire(pending)
                return await pending.future
            pending.timer = loop.call_at(deadline, _expire, pending)
        self._queue.append(pending)
        self._queued_rows += len(rows)
        self._wakeup.set()
        return await pending.future

    async def aclose(self, reason: Closed | None = None) -> None:
        """Stop the worker; requests still queued or running, and later ones, get
        ``reason()`` (by default: the service is shutting down)."""
        self._closed = reason or _shutting_down
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            # The finished task holds this batcher (through its exception's traceback): drop
            # the cycle, so a closed batcher and its model are freed without a collection
            # (which never looks at a heap frozen by DIGITS_FREEZE_HEAP).
            self._worker = None
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(self._closed())

    def _take(self, limit: int) -> list[_Pending]:
        """Live queued requests from the head totalling at most ``limit`` rows (at least one
        if any is live); expired and abandoned ones are dropped on the way."""
        taken: list[_Pending] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # expired, or its caller went away: never run
                self._queue.popleft()
                self._queued_rows -= len(head.rows)
                continue
            if taken and rows + len(head.rows) > limit:
                break
            self._queue.popleft()
            self._queued_rows -= len(head.rows)
            if head.timer is not None:
                head.timer.cancel()
            rows += len(head.rows)
            taken.append(head)
        return taken

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            gather = len(self._queue) > 1 and self._queued_rows < self.max_batch_size
            if gather and self.max_wait_s > 0:
                await asyncio.sleep(self.max_wait_s)
            batch = self._take(self.max_batch_size)
            if not batch:
                continue
            rows = batch[0].rows if len(batch) == 1 else np.concatenate([p.rows for p in batch])
            started = loop.time()
            try:
                if len(rows) <= self.inline_rows:
                    probabilities = self.forward(rows)
                else:
                    probabilities = await loop.run_in_executor(self.executor, self.forward, rows)
            except asyncio.CancelledError:
                _fail(batch, (self._closed or _shutting_down)())
                raise
            except Exception as exc:  # a failed forward fails its callers, not the worker
                log.exception("forward of %d rows failed", len(rows))
                _fail(batch, exc)
                continue
            if self.on_batch is not None:
                waits = [started - p.queued_at for p in batch]
                self.on_batch(len(rows), loop.time() - started, waits)
            start = 0
            for pending in batch:
                end = start + len(pending.rows)
                if not pending.future.done():  # the caller may have gone away
                    pending.future.set_result(probabilities[start:end])
                start = end


def _shutting_down() -> ModelNotReady:
    return ModelNotReady("the service is shutting down", expected="retry on another replica")


def _expire(pending: _Pending) -> None:
    """The deadline of a request still queued has passed: answer it now, never run it."""
    if not pending.future.done():
        waited = asyncio.get_running_loop().time() - pending.queued_at
        pending.future.set_exception(
            DeadlineExceeded(
                f"the request waited {waited * 1000:.0f} ms for a forward and its deadline "
                "passed; it was not run",
                expected="retry later, or a longer X-Request-Timeout-Ms / "
                "DIGITS_REQUEST_TIMEOUT_MS",
            )
        )


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
