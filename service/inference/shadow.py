"""Shadow scoring: the answering version replies; a shadow version scores the same rows off
the request path, and how often the two agree (same label) is counted.

``ShadowScorer.offer`` only puts the rows on a bounded queue (dropped, and counted, when it is
full: a busy service sheds shadow work first); one task wakes every ``DRAIN_INTERVAL_S``,
takes everything queued, joins the rows of each (answering, shadow) pair into one batch and
scores it through the shadow version's micro-batcher. So shadow work comes in few large
forwards (the cheapest per row) and is capped at ``queue_size`` requests per interval
(64 / 0.05 s = 1,280 requests/s by default); beyond that, requests are answered unshadowed.
Agreement is exposed in ``/metrics`` (``digits_shadow_*``) and, per model, by ``stats``
(shown in ``GET /models/{name}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter

from service.errors import ServiceError
from service.inference.loaded import LoadedModel
from service.metrics import VersionMetrics

log = logging.getLogger(__name__)

#: How often the queue is drained; with the queue size it caps the shadowed request rate.
DRAIN_INTERVAL_S = 0.05

Score = Callable[[LoadedModel, np.ndarray], Awaitable[np.ndarray]]
_Item = tuple[LoadedModel, LoadedModel, np.ndarray, np.ndarray]


@dataclass
class ShadowStats:
    """Rows of one model compared against a shadow version, and how many agreed."""

    version: int
    shadow: int
    compared: int = 0
    agreed: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


class ShadowScorer:
    """A bounded queue of rows to score again with a shadow version, and its one consumer."""

    def __init__(
        self, metrics: VersionMetrics, score: Score, *, queue_size: int, max_rows: int
    ) -> None:
        self.metrics = metrics
        self.score = score
        self.max_rows = max_rows
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._stats: dict[tuple[str, int, int], ShadowStats] = {}
        self._dropped: dict[str, int] = {}
        self._drop_counters: dict[str, Counter] = {}
        self._task: asyncio.Task[None] | None = None

    def offer(
        self, answer: LoadedModel, shadow: LoadedModel, rows: np.ndarray, labels: np.ndarray
    ) -> None:
        """Queue ``rows`` (answered with ``labels``) for ``shadow``; drop them when full."""
        try:
            self.queue.put_nowait((answer, shadow, rows, labels))
        except asyncio.QueueFull:
            self._drop(answer.name)
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="shadow")

    def _drop(self, name: str) -> None:
        """Count one request of model ``name`` that the shadow did not score."""
        self._dropped[name] = self._dropped.get(name, 0) + 1
        counter = self._drop_counters.get(name)
        if counter is None:  # ``labels()`` costs microseconds: once per model
            counter = self._drop_counters[name] = self.metrics.shadow_dropped.labels(name)
        counter.inc()

    def stats(self, name: str) -> tuple[list[ShadowStats], int]:
        """The comparisons of model ``name`` per (version, shadow version), and the drops."""
        found = [s for (n, _v, _s), s in self._stats.items() if n == name]
        return found, self._dropped.get(name, 0)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(DRAIN_INTERVAL_S)
            items: list[_Item] = []
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            groups: dict[tuple[int, int], list[_Item]] = {}
            for item in items:
                groups.setdefault((id(item[0]), id(item[1])), []).append(item)
            for group in groups.values():
                try:
                    await self._compare(group)
                except ServiceError as error:  # the shadow version is overloaded or gone
                    log.debug("shadow batch not scored: %s", error.message)
                    for item in group:
                        self._drop(item[0].name)
                except Exception:  # a failed shadow batch must never stop the scorer
                    log.exception("shadow scoring failed")

    async def _compare(self, group: list[_Item]) -> None:
        answer, shadow = group[0][0], group[0][1]
        rows = np.concatenate([item[2] for item in group])  # (N, 64)
        labels = np.concatenate([item[3] for item in group])  # (N,)
        scored = [
            await self.score(shadow, rows[i : i + self.max_rows])
            for i in range(0, len(rows), self.max_rows)
        ]  # batches of at most max_rows, as the micro-batcher takes them
        shadow_labels = np.concatenate(scored).argmax(axis=1)
        agreed = int((shadow_labels == labels).sum())
        key = (answer.name, answer.version, shadow.version)
        stats = self._stats.setdefault(key, ShadowStats(answer.version, shadow.version))
        stats.compared += len(labels)
        stats.agreed += agreed
        names = (answer.name, str(answer.version), str(shadow.version))
        self.metrics.shadow_rows.labels(*names).inc(len(labels))
        self.metrics.shadow_agreed.labels(*names).inc(agreed)
