"""``Jobs(store, launcher)``: what the routes use, whatever runs the jobs.

``Jobs`` reads and writes the store (submit with the queue bound, get, list, cancel, the SSE
events, wait) and runs the one sweeper (``JobStore.fail_stalled``: no progress for
``stall_s``, or over the time limit), which has the launcher kill what it failed. A
``Launcher`` gets queued jobs run and kills the processes of jobs the store has ended:
``LocalLauncher`` (worker processes owned by the API, ``service/jobs/local.py``) or
``CeleryLauncher`` (``send_task`` to a broker, ``service/jobs/celery_launcher.py``). Readers
poll the store, so they see jobs run by any process or backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

from service.errors import QueueFull, TrainingUnavailable
from service.jobs.liveness import SWEEP_INTERVAL_S
from service.jobs.metrics import JobMetrics
from service.jobs.records import Curve, JobRecord, JobStatus, ResolvedJob
from service.jobs.store import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10
#: How long shutdown waits for a sweep under way before cancelling it.
STOP_SWEEP_S = 10.0


@dataclass(frozen=True)
class JobEvent:
    """One step of a job as it is followed: ``state`` first (``curve`` so far), ``progress``
    as the fit advances (``curve``: the new points, the first of them at iteration
    ``first_iteration``), ``final`` (the whole curve). The routes render it."""

    kind: Literal["state", "progress", "final"]
    job: JobRecord
    curve: Curve
    first_iteration: int = 1


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
        poll_interval: float = 0.25,
        sweep_interval: float = SWEEP_INTERVAL_S,
        stall_s: float = Settings.model_fields["job_stall_s"].default,
    ) -> None:
        self.store = store
        self.launcher = launcher
        self.max_queued = max_queued
        self.refresh = refresh
        self.metrics = metrics or JobMetrics()
        self.poll_interval = poll_interval
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
        ended = await asyncio.to_thread(self.store.fail_stalled, self.stall_s)
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
            await asyncio.to_thread(self.store.fail, job.id, message)
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

    async def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The state so far, then a ``progress`` event per poll that saw new points, then
        ``final`` once the job has ended."""
        job = await self.get(job_id)
        curve = await self.curve(job_id)
        yield JobEvent("state", job, curve)
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
                    yield JobEvent("progress", job, new, first)
        await self._serve(job, None)
        job = await self.get(job_id)
        yield JobEvent("final", job, curve)

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """The job once it has ended (and its result is served); ``TimeoutError`` after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not (job := await self.get(job_id)).status.finished:
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
            await asyncio.sleep(self.poll_interval / 5)
        await self._serve(job, None if deadline is None else max(0.0, deadline - loop.time()))
        return await self.get(job_id)

    async def _serve(self, job: JobRecord, timeout: float | None) -> None:
        """Serve a succeeded job's version in this process now (other processes pick it up
        with their models-folder watcher)."""
        if job.status is JobStatus.SUCCEEDED:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh(), timeout)

    async def _refresh(self) -> None:
        async with self._refreshing:
            await self.refresh()

    async def _job_done(self, job_id: str) -> None:
        """A job this process's launcher ran has ended: record its run time, serve it."""
        job = await self.get(job_id)
        self.metrics.observe(job)
        await self._serve(job, None)

    async def _sweep_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.sweep_interval)
                return
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not stop the sweeper: retry next tick
                log.exception("job sweeper tick failed")
