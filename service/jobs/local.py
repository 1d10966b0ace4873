"""``LocalLauncher``: jobs run in worker processes owned by the API process.

``DIGITS_MAX_RUNNING_JOBS`` single-process pools ("spawn"), each started by its first job and
kept for the next, so a worker killed mid-fit breaks only its own pool (its job fails at once,
the pool is rebuilt). A dispatcher task claims a queued job whenever a slot is free and runs
``worker.run_job`` there; it SIGKILLs a worker whose job the store has ended (failed by any API
process's sweeper). docs/train.md, "How a job runs".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from service.errors import JobNotCancellable, public_message
from service.jobs.liveness import KILL_GRACE_S, WORKER_LOST, new_owner
from service.jobs.records import JobStatus
from service.jobs.runner import finish_task
from service.jobs.store import JobStore
from service.settings import Settings

#: The training stack (fit, calibration, export: torch), imported in the worker processes
#: only: the API process names its functions (``_in_worker``) and never imports it (issue 24).
WORKER_MODULE = "service.jobs.worker"

log = logging.getLogger(__name__)

SHUTDOWN = "interrupted: the service shut down while this job ran; submit it again"
#: How long shutdown waits for a dispatcher tick under way before cancelling it.
STOP_DISPATCH_S = 10.0


@dataclass
class _Slot:
    """One single-process pool and the job it runs."""

    pool: ProcessPoolExecutor | None = None
    job_id: str | None = None


def _in_worker(function: str, *args: Any, **kwargs: Any) -> Any:
    """``service.jobs.worker.<function>(*args, **kwargs)``, called in a worker process."""
    return getattr(importlib.import_module(WORKER_MODULE), function)(*args, **kwargs)


def _new_pool(nice: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_in_worker,
        initargs=("init_worker_process", nice, os.getpid()),
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


class LocalLauncher:
    """Runs jobs in ``max_running_jobs`` worker processes owned by this launcher."""

    def __init__(self, store: JobStore, settings: Settings, *, poll_interval: float = 0.25) -> None:
        self.store = store
        self.settings = settings
        self.poll_interval = poll_interval
        self.owner = new_owner()
        self._slots = [_Slot() for _ in range(settings.max_running_jobs)]
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._on_done: Callable[[str], Awaitable[None]] | None = None
        self._stopping = False
        self.unavailable = (
            "this install has no torch (digits-serve[api]): it serves models but cannot fit "
            "one in a local worker process"
            if importlib.util.find_spec("torch") is None
            else None
        )

    async def start(self, on_done: Callable[[str], Awaitable[None]]) -> None:
        """Dispatch (a worker process starts with the first job of its slot); ``on_done(job_id)``
        after each job."""
        self._on_done = on_done
        if self.unavailable is None:  # without torch no job is claimed: none could run here
            self._dispatcher = asyncio.create_task(self._dispatch_loop())

    async def launch(self, job_id: str) -> None:
        """A job was queued: look for it now rather than at the next poll."""
        self._wake.set()

    async def aclose(self) -> None:
        """Ask running jobs to stop (they end ``failed``: ``SHUTDOWN``), stop the workers."""
        if self._dispatcher is not None:
            self._stopping = True
            self._wake.set()
            await finish_task(self._dispatcher, STOP_DISPATCH_S)
        for job_id in self.running:
            with contextlib.suppress(JobNotCancellable):
                await asyncio.to_thread(self.store.request_cancel, job_id, reason=SHUTDOWN)
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=30)
        for slot in self._slots:
            if slot.job_id is not None:  # did not stop in time: say so, leave it to exit
                await asyncio.to_thread(self._fail, slot.job_id, SHUTDOWN)
            if slot.pool is not None:  # an idle worker: do not wait for it
                slot.pool.shutdown(wait=False, cancel_futures=True)

    def _fail(self, job_id: str, error: str) -> None:
        self.store.finish(job_id, self.owner, JobStatus.FAILED, error=error)

    @property
    def running(self) -> list[str]:
        """Ids of the jobs this launcher's workers are running."""
        return [s.job_id for s in self._slots if s.job_id is not None]

    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._fill_slots()
                await self.kill(await asyncio.to_thread(self._ended_elsewhere))
            except Exception:  # a database hiccup must not stop dispatching: retry next tick
                log.exception("job dispatcher tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval * 2)

    def _ended_elsewhere(self) -> list[str]:
        """Jobs still running here that the store ended over ``KILL_GRACE_S`` ago: failed by
        another process's sweeper (a worker that ends its own job returns at once)."""
        ended = (self.store.get(job_id) for job_id in self.running)
        cutoff = time.time() - KILL_GRACE_S
        return [j.id for j in ended if j.status.finished and (j.finished_at or 0) < cutoff]

    async def kill(self, job_ids: list[str]) -> None:
        """SIGKILL the workers running ``job_ids`` (the store has ended those jobs); the
        broken pool is rebuilt by ``_run``."""
        for slot in self._slots:
            if slot.job_id in job_ids and slot.pool is not None:
                for process in list(slot.pool._processes.values()):
                    process.kill()

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
        """Run ``job_id`` in ``slot``'s worker, then report it done."""
        try:
            if slot.pool is None:
                slot.pool = _new_pool(self.settings.job_nice)
            run = functools.partial(
                _in_worker,
                "run_job",
                self.store.url,
                str(self.settings.models_dir),
                job_id,
                self.owner,
                versions_dir=self.settings.versions_dir,
                versions_url=self.settings.versions_url,
            )
            await _submit(slot.pool, run)
        except BrokenProcessPool:
            log.error("the worker running job %s exited; starting a new one", job_id)
            await asyncio.to_thread(self._fail, job_id, WORKER_LOST)
            broken, slot.pool = slot.pool, _new_pool(self.settings.job_nice)
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
        except Exception as exc:  # e.g. the job could not be sent to the worker
            log.exception("job %s could not run", job_id)
            await asyncio.to_thread(self._fail, job_id, public_message(exc))
        finally:
            slot.job_id = None
            self._wake.set()
        try:
            if self._on_done is not None:
                await self._on_done(job_id)
        finally:
            self._tasks.pop(job_id, None)
