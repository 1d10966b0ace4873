"""``CeleryJobRunner``: the ``celery`` job backend, behind the same ``JobRunner`` protocol.

``submit`` writes the ``queued`` row (the queue bound counts queued rows of the shared store,
so it holds across API replicas), then sends ``train_job(job_id)`` to the broker; a Celery
worker (``service.jobs.celery_app``) runs it with the same ``run_job`` as the local backend.
Reading, streaming, waiting and cancelling go through the shared store (``StoreRunner``):
the cancel flag is what the worker's fit callback polls. The sweeper (``StoreRunner.sweep``)
fails the running jobs whose heartbeat is older than ``STALE_AFTER_S``, so a job whose
worker was killed ends ``failed`` within about ``STALE_AFTER_S + sweep_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from celery import Celery

from service.jobs.celery_app import TRAIN_TASK, create_celery_app
from service.jobs.metrics import JobMetrics
from service.jobs.records import JobRecord, JobStatus, NewJob
from service.jobs.runner import StoreRunner
from service.jobs.store import SWEEP_INTERVAL_S, JobStore, new_owner
from service.settings import Settings

log = logging.getLogger(__name__)


class CeleryJobRunner(StoreRunner):
    """Sends jobs to Celery workers; an async context manager owned by the app's lifespan."""

    def __init__(
        self,
        store: JobStore,
        *,
        settings: Settings,
        max_queued: int,
        refresh: Callable[[], Awaitable[object]],
        metrics: JobMetrics | None = None,
        poll_interval: float = 0.25,
        sweep_interval: float = SWEEP_INTERVAL_S,
    ) -> None:
        super().__init__(store, max_queued=max_queued, metrics=metrics, poll_interval=poll_interval)
        self.settings = settings
        self.refresh = refresh
        self.owner = new_owner()
        self.sweep_interval = sweep_interval
        self.celery: Celery | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.celery = create_celery_app(self.settings)
        self._sweeper = asyncio.create_task(self._sweep_loop())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Jobs keep running on their workers: an API restart does not touch them.
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.celery is not None:
            await asyncio.to_thread(self.celery.close)

    async def submit(self, new: NewJob) -> JobRecord:
        """Queue a job row, then its task; if the broker cannot take it, the job fails."""
        job = await super().submit(new)
        try:
            await asyncio.to_thread(self._send, job.id)
        except Exception as exc:  # kombu/redis errors vary by transport; the job says why
            log.exception("could not send job %s to the broker", job.id)
            message = f"could not queue the job on the broker: {type(exc).__name__}: {exc}"
            await asyncio.to_thread(self.store.fail, job.id, message)
            return await self.get(job.id)
        return job

    def _send(self, job_id: str) -> None:
        if self.celery is None:
            raise RuntimeError("CeleryJobRunner used outside its `async with`")
        # task_id = job id: a worker's logs and `celery inspect` name the job directly.
        self.celery.send_task(TRAIN_TASK, args=[job_id], task_id=job_id)

    async def _settled(self, job_id: str, timeout: float | None) -> None:
        # As with the local backend, a succeeded job's version is served by this process
        # once `wait` returns (the poller would pick it up within reload_interval_s anyway).
        job = await self.get(job_id)
        if job.status is JobStatus.SUCCEEDED:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.refresh(), timeout)

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not stop the sweeper: retry next tick
                log.exception("job sweeper tick failed")
            await asyncio.sleep(self.sweep_interval)
