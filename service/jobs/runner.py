"""Job runners: the ``JobRunner`` protocol the routes use, the store-backed parts every
backend shares (``StoreRunner``), and ``LocalJobRunner``, worker processes owned by the app.

``LocalJobRunner`` keeps ``max_running`` single-process pools ("spawn" context), so a worker
killed mid-fit breaks only its own pool, which is rebuilt; its job is marked failed. A
dispatcher task claims queued jobs from the store (an atomic ``UPDATE``, so with several API
processes on one database each job runs once) whenever a slot is free, and hands each to
``worker.run_job``. Readers poll the store, so they see jobs run by any process or backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from sqlalchemy.exc import OperationalError

from service.errors import JobNotCancellable, QueueFull, StoreUnavailable
from service.jobs.metrics import JobMetrics
from service.jobs.records import Curve, JobRecord, JobStatus, NewJob
from service.jobs.store import SWEEP_INTERVAL_S, WORKER_LOST, JobStore, new_owner
from service.jobs.views import job_view, progress_event
from service.jobs.worker import init_worker_process, run_job, warm_up

log = logging.getLogger(__name__)

SHUTDOWN = "interrupted: the service shut down while this job ran; submit it again"
RETRY_AFTER_S = 10


@dataclass(frozen=True)
class JobEvent:
    """One server-sent event: ``state`` first, ``progress`` as the fit advances, ``final``."""

    kind: Literal["state", "progress", "final"]
    data: dict[str, Any]


class JobRunner(Protocol):
    """What the routes need from a job backend."""

    async def submit(self, new: NewJob) -> JobRecord: ...
    async def get(self, job_id: str) -> JobRecord: ...
    async def curve(self, job_id: str, after_seq: int = 0) -> Curve: ...
    async def list(
        self, *, status: JobStatus | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]: ...
    async def cancel(self, job_id: str) -> JobRecord: ...
    def events(self, job_id: str) -> AsyncIterator[JobEvent]: ...
    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord: ...


class StoreRunner:
    """The store-backed half of a runner; a backend adds how queued jobs get run
    (``_dispatch``) and, optionally, what to await once a job ends (``_settled``)."""

    def __init__(
        self,
        store: JobStore,
        *,
        max_queued: int,
        metrics: JobMetrics | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        self.store = store
        self.max_queued = max_queued
        self.metrics = metrics or JobMetrics()
        self.poll_interval = poll_interval

    async def sweep(self) -> list[str]:
        """The one sweeper: fail the running jobs whose heartbeat is stale (see
        ``service.jobs.store``); update the job gauges. Returns the ids failed."""
        lost = await asyncio.to_thread(self.store.fail_lost_jobs)
        if lost:
            log.warning("failed %d job(s) whose worker fell silent: %s", len(lost), lost)
        self.metrics.update_counts(await asyncio.to_thread(self.store.counts))
        return lost

    async def submit(self, new: NewJob) -> JobRecord:
        """Queue a job; ``QueueFull`` (429,
        ``Retry-After``) when the queue is full, ``StoreUnavailable`` (503, ``Retry-After``)
        when the store cannot take the job."""
        try:
            job = await asyncio.to_thread(self.store.create, new, max_queued=self.max_queued)
        except OperationalError as exc:
            log.warning("the job store refused a new job: %s", exc.orig)
            raise StoreUnavailable(
                f"the job store cannot accept a job now: {exc.orig}",
                expected=f"retry after {RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from exc
        if job is None:
            raise QueueFull(
                f"{self.max_queued} training jobs are already waiting",
                expected=f"retry after {RETRY_AFTER_S} s, or cancel a queued job",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._dispatch(job)
        return job

    async def get(self, job_id: str) -> JobRecord:
        return await asyncio.to_thread(self.store.get, job_id)

    async def curve(self, job_id: str, after_seq: int = 0) -> Curve:
        await self.get(job_id)  # JobNotFound for an unknown id
        return await asyncio.to_thread(self.store.curve, job_id, after_seq=after_seq)

    async def list(
        self, *, status: JobStatus | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[JobRecord], int]:
        return await asyncio.to_thread(
            self.store.list_jobs, status=status, limit=limit, offset=offset
        )

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job, or ask a running one to stop (it does within a second)."""
        return await asyncio.to_thread(self.store.request_cancel, job_id)

    async def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The state so far, then a ``progress`` event per poll that saw new points, then
        ``final`` once the job has ended."""
        job = await self.get(job_id)
        curve = await self.curve(job_id)
        yield JobEvent("state", job_view(job, curve).model_dump(mode="json"))
        seen = (job.iteration, job.status, curve.last_seq)
        while not job.status.finished:
            await asyncio.sleep(self.poll_interval)
            job = await self.get(job_id)
            new = await self.curve(job_id, after_seq=curve.last_seq)
            if (job.iteration, job.status, new.last_seq) != seen:
                first = len(curve.losses) + 1
                curve.extend(new.losses, new.accuracy, new.last_seq)
                seen = (job.iteration, job.status, curve.last_seq)
                if not job.status.finished:
                    yield JobEvent("progress", progress_event(job, new, first))
        await self._settled(job_id, None)
        job = await self.get(job_id)
        yield JobEvent("final", job_view(job, curve).model_dump(mode="json"))

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """The job once it has ended (and its result is served); ``TimeoutError`` after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not (job := await self.get(job_id)).status.finished:
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
            await asyncio.sleep(self.poll_interval / 5)
        await self._settled(job_id, None if deadline is None else deadline - loop.time())
        return await self.get(job_id)

    def _dispatch(self, job: JobRecord) -> None:
        """Hook: a job was queued."""

    async def _settled(self, job_id: str, timeout: float | None) -> None:
        """Hook: wait for this process's post-processing of an ended job."""


@dataclass
class _Slot:
    """One single-process pool and the job it runs."""

    pool: ProcessPoolExecutor | None = None
    job_id: str | None = None


def _new_pool(nice: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker_process,
        initargs=(nice, os.getpid()),
    )


def _submit(pool: ProcessPoolExecutor, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """``fn(*args)`` in ``pool``; a worker process this starts is spawned with SIGINT blocked
    (it ignores it once initialised), so a Ctrl-C that comes while it imports is no traceback:
    the parent stops its workers."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _log_warm_up_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("a training worker failed to warm up: %r", done.exception())


class LocalJobRunner(StoreRunner):
    """Runs jobs in ``max_running`` worker processes owned by this runner (an async context
    manager: enter in the app's lifespan, leave on shutdown)."""

    def __init__(
        self,
        store: JobStore,
        *,
        models_dir: Path,
        max_running: int,
        max_queued: int,
        refresh: Callable[[], Awaitable[object]],
        metrics: JobMetrics | None = None,
        poll_interval: float = 0.25,
        sweep_interval: float = SWEEP_INTERVAL_S,
        nice: int = 0,
    ) -> None:
        super().__init__(store, max_queued=max_queued, metrics=metrics, poll_interval=poll_interval)
        self.models_dir = Path(models_dir)
        self.nice = nice
        self.refresh = refresh
        self.owner = new_owner()
        self.sweep_interval = sweep_interval
        self._slots = [_Slot() for _ in range(max_running)]
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dispatcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.sweep()
        for slot in self._slots:  # started and warmed now, so the first job starts at once
            slot.pool = _new_pool(self.nice)
            _submit(slot.pool, warm_up).add_done_callback(_log_warm_up_failure)
        self._dispatcher = asyncio.create_task(self._dispatch_loop())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for slot in self._slots:
            if slot.job_id is not None:
                with contextlib.suppress(JobNotCancellable):
                    await asyncio.to_thread(self.store.request_cancel, slot.job_id, reason=SHUTDOWN)
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=30)
        for slot in self._slots:
            if slot.job_id is not None:  # did not stop in time: say so, leave it to exit
                await asyncio.to_thread(self.store.fail, slot.job_id, SHUTDOWN, owner=self.owner)
            if slot.pool is not None:
                await asyncio.to_thread(
                    slot.pool.shutdown, slot.job_id is None, cancel_futures=True
                )

    @property
    def running(self) -> list[str]:
        """Ids of the jobs this runner's workers are running."""
        return [s.job_id for s in self._slots if s.job_id is not None]

    def _dispatch(self, job: JobRecord) -> None:
        self._wake.set()

    async def _settled(self, job_id: str, timeout: float | None) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait([task], timeout=timeout)

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.sweep_interval
        while True:
            self._wake.clear()
            try:
                await self._fill_slots()
                # This process owns its workers and sees one die at once (BrokenProcessPool);
                # it beats for their jobs too, so a worker still starting is not "lost".
                await asyncio.to_thread(self._beat, self.running)
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.sweep_interval
                    await self.sweep()
            except Exception:  # a database hiccup must not stop dispatching: retry next tick
                log.exception("job dispatcher tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval * 2)

    def _beat(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.store.beat(job_id, self.owner)

    async def _fill_slots(self) -> None:
        for slot in self._slots:
            if slot.job_id is not None:
                continue
            job_id = await asyncio.to_thread(self.store.claim_next, self.owner)
            if job_id is None:
                return
            slot.job_id = job_id
            self._tasks[job_id] = asyncio.create_task(self._run(slot, job_id))

    async def _run(self, slot: _Slot, job_id: str) -> None:
        """Run ``job_id`` in ``slot``'s worker; afterwards serve its model or record why not."""
        try:
            if slot.pool is None:
                slot.pool = _new_pool(self.nice)
            args = (self.store.url, str(self.models_dir), job_id, self.owner)
            await _submit(slot.pool, run_job, *args)
        except BrokenProcessPool:
            log.error("the worker running job %s exited; starting a new one", job_id)
            await asyncio.to_thread(self.store.fail, job_id, WORKER_LOST, owner=self.owner)
            broken, slot.pool = slot.pool, _new_pool(self.nice)
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
        except Exception as exc:  # e.g. the job could not be sent to the worker
            log.exception("job %s could not run", job_id)
            await asyncio.to_thread(
                self.store.fail, job_id, f"{type(exc).__name__}: {exc}", owner=self.owner
            )
        finally:
            slot.job_id = None
            self._wake.set()
        try:
            await self._after(job_id)
        finally:
            self._tasks.pop(job_id, None)

    async def _after(self, job_id: str) -> None:
        job = await self.get(job_id)
        self.metrics.observe(job)
        if job.status is JobStatus.SUCCEEDED:
            await self.refresh()  # serve the new version (and a pinned default) at once
