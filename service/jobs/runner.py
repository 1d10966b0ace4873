"""``Jobs(store, launcher)``: what the routes use, whatever runs the jobs.

``Jobs`` reads and writes the store (submit with the queue bound, get, list, cancel) and runs
the one sweeper (``liveness.fail_stalled``), which has the launcher kill what it failed. A
``Launcher`` gets queued jobs run and kills the processes of jobs the store has ended:
``LocalLauncher`` (``local.py``) or ``CeleryLauncher`` (``celery_app.py``). Readers poll
the store, so they see jobs run by any process or backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

from service.errors import QueueFull, TrainingUnavailable
from service.jobs.liveness import SWEEP_INTERVAL_S, fail_stalled
from service.jobs.metrics import JobMetrics
from service.jobs.records import Curve, JobRecord, JobStatus, ResolvedJob
from service.jobs.store import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10
#: How long shutdown waits for a sweep under way before cancelling it.
STOP_SWEEP_S = 10.0


async def finish_task(task: asyncio.Task[None], timeout: float) -> None:
    """Let ``task`` finish (cancelling it would leave a database call going on in a thread,
    holding a connection the store is about to close); cancel it after ``timeout`` s."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Launcher(Protocol):
    """How queued jobs get run, and their processes killed."""

    #: Why this launcher cannot run jobs here (``POST /train`` answers 501 with it), or
    #: ``None``.
    unavailable: str | None

    async def start(self, on_done: Callable[[str], Awaitable[None]]) -> None: ...
    async def launch(self, job_id: str) -> None: ...
    async def kill(self, job_ids: list[str]) -> None:
        """Kill the processes still running these jobs, which the store has ended."""

    async def aclose(self) -> None: ...


class Jobs:
    """The job store and a launcher; an async context manager owned by the app's lifespan."""

    def __init__(
        self,
        store: JobStore,
        launcher: Launcher,
        *,
        max_queued: int,
        refresh: Callable[[], Awaitable[object]],
        metrics: JobMetrics | None = None,
        sweep_interval: float = SWEEP_INTERVAL_S,
        stall_s: float = Settings.model_fields["job_stall_s"].default,
    ) -> None:
        self.store = store
        self.launcher = launcher
        self.max_queued = max_queued
        self.refresh = refresh
        self.metrics = metrics or JobMetrics()
        self.sweep_interval = sweep_interval
        self.stall_s = stall_s
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._refreshing = asyncio.Lock()  # one registry refresh at a time

    async def __aenter__(self) -> Self:
        await self.sweep()
        await self.launcher.start(self._job_done)
        self._sweeper = asyncio.create_task(self._sweep_loop())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sweeper is not None:
            self._stopping.set()
            await finish_task(self._sweeper, STOP_SWEEP_S)
        await self.launcher.aclose()

    async def sweep(self) -> list[str]:
        """The one sweeper: fail the running jobs with no progress for ``stall_s`` or over
        their time limit, and kill their processes; update the job gauges. Returns the ids
        failed."""
        ended = await asyncio.to_thread(fail_stalled, self.store.engine, self.stall_s)
        if ended:
            log.warning("failed %d stalled or overdue job(s), killing them: %s", len(ended), ended)
            await self.launcher.kill(ended)
        self.metrics.update_counts(await asyncio.to_thread(self.store.counts))
        return ended

    async def submit(self, new: ResolvedJob) -> JobRecord:
        """Queue a job; ``QueueFull`` (429, ``Retry-After``) when the queue is full. A store
        that cannot take it raises ``OperationalError``: 503 (``service.http.handlers``);
        ``TrainingUnavailable`` (501) where the launcher cannot run jobs."""
        if self.launcher.unavailable is not None:
            raise TrainingUnavailable(
                self.launcher.unavailable,
                expected="DIGITS_JOB_BACKEND=celery with workers of the worker image, or an "
                "install with torch: pip install 'digits-serve[all]'",
            )
        job = await asyncio.to_thread(self.store.create, new, max_queued=self.max_queued)
        if job is None:
            raise QueueFull(
                f"{self.max_queued} training jobs are already waiting",
                expected=f"retry after {RETRY_AFTER_S} s, or cancel a queued job",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        try:
            await self.launcher.launch(job.id)
        except Exception as exc:  # broker errors vary by transport; the job says why
            log.exception("could not launch job %s", job.id)
            # The broker's own error names its host: the log has it, the job says what failed.
            message = f"broker unavailable: could not queue the job ({type(exc).__name__})"
            await asyncio.to_thread(self.store.request_cancel, job.id, reason=message)
            return await self.get(job.id)
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

    async def serve(self, job: JobRecord) -> None:
        """Serve a succeeded job's version in this process now (other processes pick it up
        with their models-folder watcher)."""
        if job.status is JobStatus.SUCCEEDED:
            async with self._refreshing:
                await self.refresh()

    async def _job_done(self, job_id: str) -> None:
        """A job this process's launcher ran has ended: record its run time, serve it."""
        job = await self.get(job_id)
        self.metrics.observe(job)
        await self.serve(job)

    async def _sweep_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.sweep_interval)
                return
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not stop the sweeper: retry next tick
                log.exception("job sweeper tick failed")
